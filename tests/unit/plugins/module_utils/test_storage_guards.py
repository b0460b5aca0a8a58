"""The guard every writer shares: a corrupt record newer than the newest readable one hides the revision Helm
would act on (helm_release_unlock, helm_release_recover and helm_release_map_apis refuse on it)."""

from __future__ import annotations

import types

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._release_codec import ReleaseRecordError
from ansible_collections.helmops.recovery.plugins.module_utils._storage import corrupt_newer

NEWEST = types.SimpleNamespace(record=types.SimpleNamespace(revision=3))
CASES = [
    # (case, object refs of the corrupt records, the ones newer than revision 3)
    ("none", [], []),
    ("an older corrupt record does not hide the newest", ["Secret ns/sh.helm.release.v1.web.v2"], []),
    ("a newer one does", ["Secret ns/sh.helm.release.v1.web.v4"], ["Secret ns/sh.helm.release.v1.web.v4"]),
    (
        "two digits",
        ["Secret ns/sh.helm.release.v1.web.v12", "Secret ns/sh.helm.release.v1.web.v1"],
        ["Secret ns/sh.helm.release.v1.web.v12"],
    ),
    ("a name without a revision counts as older", ["ConfigMap ns/not-a-record"], []),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_which_corrupt_records_hide_the_newest_revision(case: tuple[str, list[str], list[str]]) -> None:
    _name, refs, newer = case
    errors = [ReleaseRecordError(ref, "bad-json", "cannot be decoded") for ref in refs]
    assert [e.object_ref for e in corrupt_newer(NEWEST, errors)] == newer  # type: ignore[arg-type]
