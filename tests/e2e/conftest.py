import pytest


def pytest_collection_modifyitems(items):
    # Everything under tests/e2e starts real processes and servers.
    for item in items:
        if "/tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
