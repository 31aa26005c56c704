"""Secrets: from the environment locally, from SSM Parameter Store when deployed."""

from functools import cache

from straitruns.settings import Settings


@cache
def _parameter(name: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_parameter(name, decrypt=True, max_age=300))


def admin_secret(settings: Settings) -> str:
    """The admin secret, or "" when none is configured (admin access is then off)."""
    if settings.admin_secret:
        return settings.admin_secret
    return _parameter(settings.admin_secret_param) if settings.admin_secret_param else ""


def run_token_secret(settings: Settings) -> str:
    if settings.run_token_secret:
        return settings.run_token_secret
    return _parameter(settings.run_token_secret_param) if settings.run_token_secret_param else ""
