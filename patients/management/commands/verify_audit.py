from __future__ import annotations

import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from patients.dbroles import audit_chain_hash_at, audit_chain_verify

_ANCHOR = re.compile(r"^(\d+):(\d+):([0-9a-f]{64})$")


class Command(BaseCommand):
    help = (
        "Check the audit trail's hash chains: an edited, deleted or reordered event fails "
        "(exit status 1, the first breaks listed). Prints each chain's head "
        "(KEY:NUMBER:HASH): keep them outside the database and pass them back with "
        "--anchor to detect a rewritten or shortened chain."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--anchor",
            action="append",
            default=[],
            metavar="KEY:NUMBER:HASH",
            help="a head printed by an earlier run, which must still be in its chain",
        )
        parser.add_argument("--limit", type=int, default=50, help="breaks listed at most")

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_chain_verify(limit=options["limit"])
        problems = [
            f"event id {b.id} (chain {b.chain_key}, number {b.chain_seq}): {b.problem}"
            for b in report.breaks
        ]
        for anchor in options["anchor"]:
            match = _ANCHOR.match(anchor.strip())
            if match is None:
                raise CommandError(f"--anchor {anchor!r} is not KEY:NUMBER:HASH")
            key, seq, expected = int(match[1]), int(match[2]), match[3]
            stored = audit_chain_hash_at(key=key, seq=seq)
            if stored != expected:
                problems.append(
                    f"anchor {key}:{seq}: the chain was rewritten or cut "
                    f"(now {stored or 'missing'})"
                )
        if problems:
            for line in problems:
                self.stderr.write(line)
            raise CommandError(f"The audit trail was tampered with ({len(problems)} breaks).")
        self.stdout.write(
            f"Audit trail intact: {report.events} events in {len(report.heads)} chains."
        )
        for head in report.heads:
            self.stdout.write(f"head {head}")
