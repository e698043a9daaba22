"""An upload of several photos is one request: photos past the per-user concurrency wait their turn.

The page says "Up to 10 photos at once", while the quota lets one user have only
PHOTODETECTIVE_QUOTA_MAX_CONCURRENT (2) photos analysed at the same time. A chat user sends one
photo per message and can be told to wait; a page's upload sends them all at once, so the ones
past the limit are kept (queued on the page) and submitted as the earlier ones finish.
"""

from __future__ import annotations

from pathlib import Path

from tests.integration.web_harness import jpeg, running_web


async def test_ten_photos_at_once_are_all_accepted_and_all_analysed(tmp_path: Path) -> None:
    names = [f"p{n}.jpg" for n in range(10)]
    async with running_web(tmp_path, quota_max_concurrent=2, quota_burst_limit=100) as web:
        await web.sign_in()
        answer = await web.upload(*((name, jpeg()) for name in names))
        body = answer.json()
        ids = [r["id"] for r in body["results"]]
        finished = [await web.finished(result_id) for result_id in ids]
        usage = await web.service.usage("web:alice")
    assert answer.status == 202
    assert body["refused"] == []
    assert len(ids) == 10
    assert [f["status"] for f in finished] == ["done"] * 10
    assert usage.used == 10


async def test_a_waiting_photo_refused_later_says_why_on_its_page(tmp_path: Path) -> None:
    async with running_web(
        tmp_path, quota_max_concurrent=1, quota_daily_limit=2, quota_burst_limit=100
    ) as web:
        await web.sign_in()
        answer = await web.upload(("a.jpg", jpeg()), ("b.jpg", jpeg()), ("c.jpg", jpeg()))
        ids = [r["id"] for r in answer.json()["results"]]
        # b and c wait for a; b then spends the day's second photo, so c is refused for the day
        # once its turn comes, and says so instead of waiting for ever. Only two are charged.
        statuses = [await web.finished(result_id) for result_id in ids]
        usage = await web.service.usage("web:alice")
    assert answer.status == 202
    assert answer.json()["refused"] == []
    assert [s["status"] for s in statuses] == ["done", "done", "failed"]
    assert statuses[2]["error"]["code"] == "daily_limit"
    assert "resets" in statuses[2]["error"]["message"]
    assert usage.used == 2
