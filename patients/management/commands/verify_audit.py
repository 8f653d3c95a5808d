from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from patients.dbroles import audit_chain_hash_at, audit_chain_verify


class Command(BaseCommand):
    help = (
        "Check the audit trail's hash chain: an edited, deleted or reordered event fails "
        "(exit status 1, the first breaks listed). Prints the head (number and hash): keep "
        "it outside the database and pass it back with --anchor to detect a rewritten tail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--anchor",
            action="append",
            default=[],
            metavar="SEQ:HASH",
            help="a head printed by an earlier run, which must still be in the chain",
        )
        parser.add_argument("--limit", type=int, default=50, help="breaks listed at most")

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_chain_verify(limit=options["limit"])
        problems = [f"event id {b.id} (number {b.chain_seq}): {b.problem}" for b in report.breaks]
        for anchor in options["anchor"]:
            seq, _, expected = anchor.partition(":")
            if not seq.isdigit() or not expected:
                raise CommandError(f"--anchor {anchor!r} is not SEQ:HASH")
            stored = audit_chain_hash_at(seq=int(seq))
            if stored != expected:
                problems.append(
                    f"anchor {seq}: the chain was rewritten (now {stored or 'missing'})"
                )
        if problems:
            for line in problems:
                self.stderr.write(line)
            raise CommandError(f"The audit trail was tampered with ({len(problems)} breaks).")
        self.stdout.write(
            f"Audit trail intact: {report.events} events; head {report.head_seq}:"
            f"{report.head_hash or ''}"
        )
