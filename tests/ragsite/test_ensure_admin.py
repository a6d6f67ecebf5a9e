from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def run(login_file) -> str:
    out = StringIO()
    call_command("ensure_admin", "--login-file", str(login_file), stdout=out)
    return out.getvalue()


def test_the_admin_password_is_printed_once_when_the_account_is_made(tmp_path):
    login_file = tmp_path / "admin-login.txt"
    first = run(login_file)
    password = login_file.read_text().split()[1]
    assert password in first and str(login_file) in first
    again = run(login_file)
    assert password not in again
    assert str(login_file) in again  # where to find it
