# ruff: noqa: B904 -- the bare raise in except is the bug: it chains with "During handling"
import os


class SettingsError(RuntimeError):
    pass


def tenant_setting(tenant_id):
    try:
        return os.environ[f"TENANT_{tenant_id}_PLAN"]
    except KeyError:
        raise SettingsError(f"no plan configured for tenant {tenant_id}")
