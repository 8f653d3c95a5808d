"""Each channel is built from its environment settings, and stays off without them."""

from __future__ import annotations

import json
import logging

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from notifications.channels.apns import ApnsChannel
from notifications.channels.fcm import FcmChannel
from notifications.channels.httputil import host_allowed, retry_after_seconds
from notifications.channels.webpush import WebPushChannel
from tests.notifications.subscriptions import vapid_private_key


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_every_channel_is_off_without_credentials():
    assert FcmChannel.from_settings() is None
    assert ApnsChannel.from_settings() is None
    assert WebPushChannel.from_settings() is None


def test_the_channels_are_built_from_their_settings(settings, tmp_path):
    p8 = tmp_path / "AuthKey_KEY1234567.p8"
    p8.write_text(_pem(ec.generate_private_key(ec.SECP256R1())))
    settings.APNS_TEAM_ID, settings.APNS_KEY_ID = "TEAM123456", "KEY1234567"
    settings.APNS_PRIVATE_KEY_FILE, settings.APNS_TOPIC = str(p8), "com.example.rehab"
    account = {
        "type": "service_account",
        "private_key": _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "client_email": "push@example.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    settings.FCM_PROJECT_ID, settings.FCM_SERVICE_ACCOUNT_JSON = "rehab", json.dumps(account)
    settings.WEBPUSH_VAPID_PRIVATE_KEY = vapid_private_key()
    channels = [ApnsChannel.from_settings(), FcmChannel.from_settings()]
    webpush = WebPushChannel.from_settings()
    assert [c.name for c in channels if c is not None] == ["apns", "fcm"]
    assert webpush is not None
    assert webpush.name == "webpush"
    for channel in [*channels, webpush]:
        assert channel is not None
        channel.close()


def test_a_pem_vapid_key_works_as_well(settings):
    key = ec.generate_private_key(ec.SECP256R1())
    settings.WEBPUSH_VAPID_PRIVATE_KEY = _pem(key)
    channel = WebPushChannel.from_settings()
    assert channel is not None
    channel.close()


def test_the_http_clients_do_not_log_urls_with_device_tokens():
    # Their INFO lines carry the request URL: /3/device/<token>, a Web Push endpoint.
    for name in ("httpx", "httpcore", "urllib3"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)


def test_retry_after_reads_both_forms():
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_the_host_allow_list_matches_exact_hosts_subdomains_and_ports():
    allowed = ["fcm.googleapis.com", "*.notify.windows.com", "localhost:8443"]
    assert host_allowed("https://fcm.googleapis.com/fcm/send/x", allowed)
    assert host_allowed("https://FCM.googleapis.com:443/x", allowed)
    assert host_allowed("https://wns2-par02p.notify.windows.com/w/?token=x", allowed)
    assert host_allowed("https://localhost:8443/push/x", allowed)
    assert not host_allowed("https://localhost/push/x", allowed)
    assert not host_allowed("https://evilnotify.windows.com/x", allowed)
    assert not host_allowed("https://fcm.googleapis.com:99999/x", allowed)
    assert not host_allowed("https://[::1/x", allowed)
