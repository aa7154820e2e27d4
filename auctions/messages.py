"""UI texts of taking part in auctions: key → (简体中文, English). Merged into market/i18n.py."""

MESSAGES: dict[str, tuple[str, str]] = {
    "auction.nav.my_auctions": ("我的竞拍", "My auctions"),
    "auction.nav.deposits": ("保证金确认", "Deposits"),
    # the lot page's registration panel
    "auction.register.title": ("报名参拍", "Take part"),
    "auction.register.button": ("报名参拍", "Register to bid"),
    "auction.register.intro": (
        "报名后请按页面所示转账缴纳保证金 {amount}，交易所确认到账后方可出价。",
        "After registering, transfer the deposit of {amount} as shown; you can bid once "
        "the exchange confirms it arrived.",
    ),
    "auction.register.sign_in": ("登录后报名参拍", "Sign in to take part"),
    "auction.register.buyers_only": (
        "仅经交易所审核的竞买人或收储机构可报名参拍。",
        "Only buyers and acquirers approved by the exchange take part.",
    ),
    "auction.register.not_approved": (
        "贵单位尚未通过交易所审核，审核通过后方可报名。",
        "Your organisation is not approved yet; you can register once it is.",
    ),
    "auction.register.closed": (
        "本拍品当前不接受报名。",
        "This lot does not take registrations now.",
    ),
    "auction.bidder_code": ("竞买号牌", "Bidder code"),
    "auction.bidder_code_hint": (
        "出价记录只显示号牌；竞价结束前不公开竞买人身份。",
        "The bid history shows only this code; identities stay hidden until the close.",
    ),
    "auction.priority": (
        "优先购买权人（第 {rank} 顺位）",
        "Pre-emptive right holder (rank {rank})",
    ),
    "auction.round": ("轮次", "Round"),
    "auction.deposit": ("保证金", "Deposit"),
    "auction.deposit_status": ("保证金状态", "Deposit"),
    "auction.deposit.awaiting": ("待确认", "Awaiting"),
    "auction.deposit.confirmed": ("已确认", "Confirmed"),
    "auction.deposit.released": ("已退还", "Released"),
    "auction.deposit.applied": ("已转价款", "Applied to the price"),
    "auction.deposit.forfeited": ("已没收", "Forfeited"),
    "auction.deposit.confirmed_note": (
        "保证金已确认，竞价期间可以出价。",
        "Deposit confirmed: you may bid while bidding is open.",
    ),
    # deposit instructions
    "auction.pay.title": ("保证金缴纳", "Paying the deposit"),
    "auction.pay.amount": ("转账金额", "Amount"),
    "auction.pay.reference": ("转账附言（必填）", "Transfer reference (required)"),
    "auction.pay.account_name": ("收款账户", "Account name"),
    "auction.pay.bank": ("开户行", "Bank"),
    "auction.pay.account_number": ("账号", "Account number"),
    "auction.pay.note": (
        "请以本单位账户转账，附言填写上述转账编号，金额须与保证金完全一致；"
        "交易所确认到账后方可出价。",
        "Transfer from your organisation's account, write the reference above on the "
        "transfer and send exactly the deposit; you can bid once the exchange confirms it.",
    ),
    # refusals
    "auction.refused.title": ("报名未成功", "Registration refused"),
    "auction.refused.not_a_buyer": (
        "只有竞买人或收储机构可以报名参拍。",
        "Only buyer and acquirer organisations take part in auctions.",
    ),
    "auction.refused.not_approved": (
        "贵单位尚未通过交易所审核，不能报名。",
        "Your organisation is not approved by the exchange, so it cannot register.",
    ),
    "auction.refused.barred": (
        "贵单位曾竞得本标的后悔拍，不得再次参与其竞买。",
        "Your organisation defaulted as the winner of these assets before and is barred "
        "from bidding on them again.",
    ),
    "auction.refused.lot_not_open": (
        "拍品不在公告或竞价期间，暂不接受报名。",
        "The lot is not announced or bidding, so it takes no registrations.",
    ),
    "auction.back_to_lot": ("返回拍品", "Back to the lot"),
    # my auctions
    "auction.my.title": ("我的竞拍", "My auctions"),
    "auction.my.none": ("尚未报名任何拍品。", "You have not registered for any lot yet."),
    "auction.my.browse": ("浏览拍品", "Browse lots"),
    "auction.my.payments_due": ("待付款", "Payments due"),
    "auction.my.lot": ("拍品", "Lot"),
    "auction.my.lot_status": ("拍品状态", "Lot status"),
    "auction.my.current_price": ("当前价", "Current price"),
    "auction.my.ends_at": ("结束时间", "Ends"),
    "auction.my.bids": ("我的出价", "My bids"),
    "auction.my.bid_count": ("共 {count} 次，最高 {highest}", "{count} bids, highest {highest}"),
    "auction.my.no_bids": ("尚未出价", "No bids yet"),
    "auction.my.leading": ("当前领先", "Leading"),
    "auction.my.outbid": ("已被超越", "Outbid"),
    "auction.my.won": ("竞得", "Won"),
    "auction.my.sale": ("成交", "Sale"),
    "auction.my.price": ("成交价", "Price"),
    "auction.my.fee.commission": ("佣金", "Commission"),
    "auction.my.fee.buyer_premium": ("买方佣金", "Buyer's premium"),
    "auction.my.balance_due": ("应付余款", "Balance due"),
    "auction.my.due_at": ("付款期限", "Pay by"),
    "auction.my.payment_reference": ("付款附言", "Payment reference"),
    "auction.my.sale.awaiting_payment": ("待付款", "Awaiting payment"),
    "auction.my.sale.paid": ("已付款", "Paid"),
    "auction.my.sale.defaulted": ("悔拍", "Defaulted"),
    "auction.my.overdue": ("已逾期", "Overdue"),
    "auction.my.pay_note": (
        "请在付款期限前将应付余款转入交易所账户，附言填写付款附言；逾期未付视为悔拍，保证金不予退还。",
        "Transfer the balance to the exchange's account before the deadline, with the "
        "payment reference; unpaid by then is a default and the deposit is forfeited.",
    ),
    "auction.bid_kind.manual": ("出价", "Bid"),
    "auction.bid_kind.proxy": ("代理出价", "Proxy"),
    "auction.bid_kind.match": ("优先权跟价", "Pre-emptive match"),
    "auction.bid_kind.sealed": ("密封报价", "Sealed bid"),
    # the operator's deposits
    "auction.ops.title": ("保证金确认", "Deposit confirmation"),
    "auction.ops.intro": (
        "按银行流水逐笔确认：输入转账附言中的转账编号和实际到账金额。金额须与保证金一致。",
        "Confirm each transfer from the bank statement: the transfer reference it carries "
        "and the amount received, which must equal the deposit.",
    ),
    "auction.ops.reference": ("转账编号", "Transfer reference"),
    "auction.ops.amount": ("到账金额（元）", "Amount received (CNY)"),
    "auction.ops.confirm": ("确认到账", "Confirm receipt"),
    "auction.ops.none": ("没有待确认的保证金。", "No deposits awaiting confirmation."),
    "auction.ops.buyer": ("竞买人", "Buyer"),
    "auction.ops.registered_at": ("报名时间", "Registered"),
    "auction.ops.done": ("已确认转账编号 {reference} 的保证金。", "Deposit {reference} confirmed."),
    "auction.ops.again": (
        "转账编号 {reference} 的保证金此前已确认，本次未重复记账。",
        "Deposit {reference} was confirmed before; nothing was posted again.",
    ),
    "auction.ops.released": (
        "该轮竞价已结束，保证金确认后已同时退还。",
        "Its round had closed, so the deposit was released at once.",
    ),
}
