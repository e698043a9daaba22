"""Per-user quotas and abuse control: daily photos, concurrency, burst rate, a global cost cap.

Two stores implement one interface (`QuotaStore`): `SQLiteQuotaStore` (default, one file in the data
directory) and `RedisQuotaStore` (several hosts). Policy values come in as a `QuotaPolicy` on every
call; the allowlist of chats/workspaces is checked by the service layer, not here.
"""

from bot.quota.base import QuotaStore, QuotaStoreError, QuotaStoreUnavailable, quota_day
from bot.quota.models import ChargeResult, QuotaPolicy, Refusal, Stats, Usage, UserCount
from bot.quota.redis import RedisQuotaStore
from bot.quota.sqlite import SQLiteQuotaStore

__all__ = [
    "ChargeResult",
    "QuotaPolicy",
    "QuotaStore",
    "QuotaStoreError",
    "QuotaStoreUnavailable",
    "RedisQuotaStore",
    "Refusal",
    "SQLiteQuotaStore",
    "Stats",
    "Usage",
    "UserCount",
    "quota_day",
]
