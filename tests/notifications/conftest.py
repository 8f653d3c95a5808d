from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from notifications.channels.registry import channel_get
from notifications.channels.webpush import vapid_public_key
from tests.notifications.fakes.fcm import FakeFcm
from tests.notifications.fakes.server import Certificates, make_certificates, serving
from tests.notifications.fakes.webpush import FakeWebPush
from tests.notifications.subscriptions import BrowserKeys, vapid_private_key


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("fake-push-tls"))


@pytest.fixture
def closing() -> Iterator[list[object]]:
    """Channels a test opened, closed after it (their HTTP connections)."""
    opened: list[object] = []
    yield opened
    for channel in opened:
        close = getattr(channel, "close", None)
        if close is not None:
            close()


@dataclass
class PushProviders:
    """Local FCM and Web Push servers, with the settings that turn both channels on."""

    fcm: FakeFcm
    webpush: FakeWebPush
    vapid_key: str

    def browser(self) -> dict[str, object]:
        """A browser's subscription to this server's Web Push key."""
        return self.webpush.subscribe(BrowserKeys.new(), vapid_public_key(self.vapid_key))


@pytest.fixture
def push_providers(certificates, settings) -> Iterator[PushProviders]:
    account_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    email = "push@rehab-test.iam.gserviceaccount.com"
    fcm = FakeFcm(project="rehab-test", client_email=email, public_key=account_key.public_key())
    webpush = FakeWebPush()
    vapid_key = vapid_private_key()
    with serving(fcm, certificates), serving(webpush, certificates):
        pem = account_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        settings.FCM_PROJECT_ID = "rehab-test"
        settings.FCM_BASE_URL = fcm.base_url
        settings.FCM_SERVICE_ACCOUNT_JSON = json.dumps(
            {
                "type": "service_account",
                "project_id": "rehab-test",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": email,
                "client_id": "1",
                "token_uri": fcm.token_uri,
            }
        )
        settings.WEBPUSH_VAPID_PRIVATE_KEY = vapid_key
        settings.WEBPUSH_ALLOWED_HOSTS = [webpush.base_url.removeprefix("https://")]
        settings.PUSH_CA_FILE = str(certificates.ca_file)
        settings.NOTIFICATION_CHANNELS = {
            **settings.NOTIFICATION_CHANNELS,
            "fcm": "notifications.channels.fcm.FcmChannel",
            "webpush": "notifications.channels.webpush.WebPushChannel",
        }
        yield PushProviders(fcm=fcm, webpush=webpush, vapid_key=vapid_key)
        for name in ("fcm", "webpush"):
            channel_get(name).close()  # type: ignore[attr-defined]
