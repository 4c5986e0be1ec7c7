from watcher.group.template import MEMBER_LIMIT, TemplateMiner


def test_shape_past_member_limit_follows_a_merge() -> None:
    """A cached shape beyond MEMBER_LIMIT still finds its cluster after consolidate() merged it."""
    words = [
        f"{c}{v}" for c in "bcdfghjklm" for v in ("ax", "ox", "ux", "ix", "ex", "yx", "ar", "or")
    ]
    miner = TemplateMiner()
    shapes = [
        f"start {words[i % 80]} {words[(i * 3 + 1) % 80]} tail end more"
        for i in range(MEMBER_LIMIT + 1)
    ]
    for message in shapes:  # one cluster; the last shape is cached but in no member list
        miner.add(message)
    for i in range(200):  # a larger cluster in the "<*>" bucket that the first one merges into
        miner.add(f"{i} {words[i % 80]} {words[(i * 7) % 80]} tail end more")
    assert miner.consolidate() == 1
    assert miner.add(shapes[-1]) is miner.add(shapes[0])
    assert len(miner) == 1
