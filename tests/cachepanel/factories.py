from __future__ import annotations

from django.contrib.auth.models import Permission, User

PASSWORD = "a-long-test-password"  # noqa: S105 (test accounts only)


def staff_user(username: str, *permissions: str, is_staff: bool = True) -> User:
    """A user with the cache panel's permissions named (view_cache, manage_cache)."""
    user = User.objects.create_user(username, password=PASSWORD, is_staff=is_staff)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="cachepanel", codename__in=permissions)
    )
    return user
