"""The UI's two languages: Simplified Chinese first, English available (brief).

One catalogue, keyed by a short dotted name, so a missing translation is a failing test
(tests/test_i18n.py checks every key used in templates exists in both languages).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
DEFAULT: Lang = "zh"

CATALOG: dict[str, tuple[str, str]] = {
    # key: (简体中文, English)
    "site.name": ("知识产权质物处置交易所", "IP Collateral Disposal Exchange"),
    "site.tagline": (
        "银行不良知识产权质物的挂牌、竞价与许可处置平台",
        "Listing, auction and licensing of defaulted pledged IP",
    ),
    "nav.home": ("首页", "Home"),
    "nav.lots": ("拍品", "Lots"),
    "nav.account": ("我的账户", "My account"),
    "nav.operator": ("运营审核", "Operator"),
    "nav.collateral": ("质押资产", "Collateral"),
    "nav.cases": ("处置案件", "Disposal cases"),
    "nav.login": ("登录", "Sign in"),
    "nav.logout": ("退出", "Sign out"),
    "nav.register": ("竞买人注册", "Register as buyer"),
    "lang.switch": ("English", "中文"),
    "home.title": ("知识产权质物处置", "Disposal of pledged IP"),
    "home.intro": (
        "银行在此挂牌处置违约知识产权质押贷款的质物（专利、商标、著作权）。"
        "经审核的竞买人缴纳保证金后在线竞价；处置所得按规则回流至银行与风险补偿资金池。",
        "Banks list the pledged IP (patents, trademarks, copyrights) of defaulted loans here. "
        "Approved buyers pay a deposit and bid online; proceeds flow back to the bank and to "
        "the risk-compensation pools.",
    ),
    "login.title": ("登录", "Sign in"),
    "login.email": ("电子邮箱", "E-mail"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Sign in"),
    "login.failed": ("邮箱或密码错误。", "Wrong e-mail address or password."),
    "login.locked": (
        "失败次数过多，请 {minutes} 分钟后再试。",
        "Too many failed sign-ins; try again in {minutes} minutes.",
    ),
    "register.title": ("竞买人注册", "Buyer registration"),
    "register.intro": (
        "注册后需经交易所审核统一社会信用代码，审核通过方可报名竞买。",
        "After registering, the exchange checks your unified social credit "
        "code; you can bid once approved.",
    ),
    "register.org_name": ("单位名称", "Organisation name"),
    "register.credit_code": ("统一社会信用代码", "Unified social credit code"),
    "register.display_name": ("联系人姓名", "Contact name"),
    "register.submit": ("提交注册", "Register"),
    "register.done": (
        "注册已提交，待交易所审核。",
        "Registered; awaiting the exchange's approval.",
    ),
    "account.title": ("我的账户", "My account"),
    "account.org": ("所属单位", "Organisation"),
    "account.kind": ("单位类型", "Kind"),
    "account.status": ("审核状态", "Status"),
    "account.role": ("角色", "Role"),
    "account.users": ("单位用户", "Users"),
    "account.language": ("语言", "Language"),
    "tokens.title": ("API 令牌", "API tokens"),
    "tokens.intro": (
        "供银行系统调用接口。令牌只显示一次，请立即保存。",
        "For your systems to call the API. A token is shown once: store it now.",
    ),
    "tokens.name": ("名称", "Name"),
    "tokens.scopes": ("权限范围", "Scopes"),
    "tokens.expires_days": ("有效天数（可空）", "Valid for days (optional)"),
    "tokens.create": ("生成令牌", "Create token"),
    "tokens.created": ("新令牌（仅显示这一次）：", "New token (shown this once only):"),
    "tokens.revoke": ("吊销", "Revoke"),
    "tokens.revoked": ("已吊销", "Revoked"),
    "tokens.active": ("有效", "Active"),
    "tokens.none": ("尚无令牌。", "No tokens yet."),
    "tokens.created_at": ("创建时间", "Created"),
    "tokens.state": ("状态", "State"),
    "operator.title": ("竞买人审核", "Organisations to approve"),
    "operator.none": ("没有待审核的单位。", "Nothing waiting for approval."),
    "operator.approve": ("通过", "Approve"),
    "operator.reject": ("驳回", "Reject"),
    "operator.reason": ("驳回理由", "Reason for rejection"),
    "operator.contact": ("联系人", "Contact"),
    "operator.registered": ("注册时间", "Registered"),
    "kind.bank": ("银行", "Bank"),
    "kind.buyer": ("竞买人", "Buyer"),
    "kind.pool": ("风险补偿资金池", "Guarantee pool"),
    "kind.operator": ("交易所运营方", "Exchange operator"),
    "kind.acquirer": ("收储机构", "Backstop acquirer"),
    "status.pending": ("待审核", "Pending"),
    "status.approved": ("已通过", "Approved"),
    "status.rejected": ("已驳回", "Rejected"),
    "status.suspended": ("已暂停", "Suspended"),
    "role.admin": ("管理员", "Administrator"),
    "role.member": ("成员", "Member"),
    "error.title": ("出错了", "Something went wrong"),
    "error.404": (
        "页面不存在，或您无权查看。",
        "This page does not exist, or is not yours to see.",
    ),
    "error.403": (
        "请求被拒绝（安全校验未通过或无权限）。请刷新页面后重试。",
        "Request refused (security check failed or not permitted). Reload and retry.",
    ),
    "error.500": (
        "服务器内部错误，我们已记录。请稍后重试。",
        "Internal error; it has been logged. Please try again later.",
    ),
    "error.reference": ("参考编号", "Reference"),
    "error.back": ("返回首页", "Back to the home page"),
    "form.fix": ("请更正以下问题：", "Please correct the following:"),
}


# Each area keeps its own texts; a key defined twice is a mistake caught here at import.
from auctions.messages import MESSAGES as _AUCTIONS  # noqa: E402
from auctions.messages_closing import MESSAGES as _CLOSING  # noqa: E402
from auctions.messages_live import MESSAGES as _LIVE  # noqa: E402
from market.cases.messages import MESSAGES as _CASES  # noqa: E402
from market.catalogue.messages import MESSAGES as _CATALOGUE  # noqa: E402
from market.collateral.messages import MESSAGES as _COLLATERAL  # noqa: E402
from market.lots.messages import MESSAGES as _LOTS  # noqa: E402
from market.notify.messages import MESSAGES as _NOTIFY  # noqa: E402
from market.notify.messages_interests import MESSAGES as _INTERESTS  # noqa: E402
from market.notify.messages_webhooks import MESSAGES as _WEBHOOKS  # noqa: E402
from market.pools.messages_bank import MESSAGES as _POOL_BANK  # noqa: E402
from market.pools.messages_pool import MESSAGES as _POOL  # noqa: E402
from market.pools.messages_reconciliation import MESSAGES as _RECONCILIATION  # noqa: E402

for _area in (
    _COLLATERAL,
    _CASES,
    _LOTS,
    _CATALOGUE,
    _AUCTIONS,
    _CLOSING,
    _LIVE,
    _WEBHOOKS,
    _INTERESTS,
    _NOTIFY,
    _POOL,
    _POOL_BANK,
    _RECONCILIATION,
):
    _twice = set(_area) & set(CATALOG)
    if _twice:
        raise RuntimeError(f"texts defined twice: {sorted(_twice)}")
    CATALOG.update(_area)


def translator(lang: str) -> Callable[..., str]:
    index = 1 if lang == "en" else 0

    def _(key: str, **params: object) -> str:
        entry = CATALOG.get(key)
        text = key if entry is None else entry[index]
        return text.format(**params) if params else text

    return _


def pick(lang: str | None) -> Lang:
    return "en" if lang == "en" else DEFAULT
