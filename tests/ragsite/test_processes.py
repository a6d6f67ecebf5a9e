"""Several web processes, one cache: what one computes, the other serves; what one commits,
both obey. Two gunicorn servers (as `make run` starts one), each with its workers, against
the same PostgreSQL and Redis."""

from __future__ import annotations

import secrets

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from bench.load import Client
from tests.chat.factories import handbook
from tests.servers import site_server

TEA = "How hot should the water be for green tea?"


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = secrets.token_hex(12)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]  # fmt: skip
    for name, (filename, data) in files.items():
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                "Content-Type: text/plain\r\n\r\n")  # fmt: skip
        parts.append(head.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_answer_from_one_process_is_a_hit_in_the_other_and_a_change_through_one_reaches_both(
    test_database_url, redis_url, openai_embeddings, tmp_path
):
    collection = handbook()  # embedded by the project's OpenAI-compatible server, as the servers will
    password = secrets.token_urlsafe(12)
    editor = get_user_model().objects.create_superuser("editor", "editor@example.com")
    editor.password = PBKDF2PasswordHasher().encode(password, PBKDF2PasswordHasher().salt())  # the servers' hasher
    editor.save()
    env = {"OPENAI_BASE_URL": openai_embeddings.base_url, "GENERATOR": "extractive", "ASK_RATE": "",
           "CELERY_TASK_ALWAYS_EAGER": "1"}  # an upload is ingested within its request  # fmt: skip
    with (
        site_server("gunicorn", database_url=test_database_url, redis_url=redis_url, log=tmp_path / "a.log",
                    **env) as port_a,
        site_server("gunicorn", database_url=test_database_url, redis_url=redis_url, log=tmp_path / "b.log",
                    **env) as port_b,
    ):  # fmt: skip
        first, second = Client(f"http://127.0.0.1:{port_a}"), Client(f"http://127.0.0.1:{port_b}")
        computed, _ = first.ask(TEA)
        assert computed["trace"]["from_cache"] is False and "eighty degrees" in computed["answer"]
        served, _ = second.ask(TEA)
        assert served["trace"]["from_cache"] is True and served["answer"] == computed["answer"]

        first.sign_in("editor", password)
        kettle = ("kettle.txt", b"Green tea needs water at seventy degrees.")
        body, content_type = multipart({"collection": str(collection.pk)}, {"uploads": kettle})
        status, page = first.post_bytes("/documents/upload/", body, content_type)
        assert status == 200, page[-2000:]
        assert collection.documents.get(original_filename="kettle.txt").status == "ready"

        after, _ = second.ask(TEA)
        assert after["trace"]["from_cache"] is False  # the collection changed: nothing from before it
        assert "seventy degrees" in after["answer"]
        again, _ = first.ask(TEA)
        assert again["trace"]["from_cache"] is True and again["answer"] == after["answer"]
        first.close()
        second.close()
