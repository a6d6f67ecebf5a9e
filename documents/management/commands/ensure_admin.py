from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Create the first admin account once, and print its login."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--login-file", type=Path, required=True, help="Where the generated password is kept.")

    def handle(self, *args: Any, username: str, login_file: Path, **options: Any) -> None:
        users = get_user_model()
        if not users.objects.filter(username=username).exists():
            if users.objects.filter(is_superuser=True).exists():
                return  # the operator made their own admin: nothing to announce
            password = secrets.token_urlsafe(12)
            users.objects.create_superuser(username=username, email="", password=password)
            login_file.parent.mkdir(parents=True, exist_ok=True)
            login_file.write_text(f"{username}\n{password}\n")
            login_file.chmod(0o600)
            self.stdout.write(self.style.SUCCESS(f"Created the admin account {username!r}."))
            self.stdout.write(f"Admin login: {username} / {password}  (kept in {login_file}; change it in the admin)")
        elif login_file.exists():  # printed once, when made: logs of later starts do not carry it
            self.stdout.write(f"Admin login: kept in {login_file}")
