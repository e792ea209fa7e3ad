"""The configuration reference in docs/ is what the model generates (it cannot drift)."""

from rtdp_dagster.config_reference import REFERENCE_FILE, markdown


def test_reference_file_matches_the_model() -> None:
    assert REFERENCE_FILE.read_text() == markdown(), "docs/configuration.md is stale: run `rtdp config reference`"


def test_reference_lists_nested_keys_with_their_comments() -> None:
    text = markdown()
    assert '| `stack.victoria_metrics.latency_offset` | str | `"1s"` | Queries hide points newer than this' in text
    assert "| `kafka.points_topic` |" in text
