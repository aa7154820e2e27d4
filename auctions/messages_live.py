"""UI texts of the live lot page and its bid forms: key → (简体中文, English).

To be merged into market/i18n.py like auctions/messages.py."""

MESSAGES: dict[str, tuple[str, str]] = {
    # the live board, for everyone
    "live.title": ("实时竞价", "Live bidding"),
    "live.current_price": ("当前价", "Current price"),
    "live.start_price": ("起拍价（尚无出价）", "Starting price (no bids yet)"),
    "live.leader": ("领先号牌", "Leading bidder"),
    "live.nobody": ("暂无", "None yet"),
    "live.bid_count": ("出价次数", "Bids"),
    "live.ends_in": ("距结束", "Ends in"),
    "live.starts_in": ("距开始", "Starts in"),
    "live.ends_at": ("结束时间（含延时）", "Ends at (with extensions)"),
    "live.countdown.days": ("{d} 天 {hms}", "{d} d {hms}"),
    "live.ended": ("已结束，等待成交确认", "Ended; awaiting confirmation of the result"),
    "live.sealed": (
        "密封报价：截止前不公开价格、出价人和出价记录。",
        "Sealed bids: prices, bidders and bids stay hidden until the deadline.",
    ),
    "live.reconnecting": (
        "实时连接中断，正在重新连接…",
        "The live connection dropped; reconnecting…",
    ),
    "live.clock_note": (
        "倒计时以交易所服务器时间为准。",
        "The countdown follows the exchange's clock.",
    ),
    "live.history": ("出价记录", "Bid history"),
    "live.history.none": ("暂无出价", "No bids yet"),
    "live.history.code": ("号牌", "Bidder"),
    "live.history.amount": ("出价", "Amount"),
    "live.history.kind": ("方式", "Type"),
    "live.history.time": ("时间", "Time"),
    "live.history.leading": ("领先", "Leading"),
    # the buyer's forms
    "live.you": ("您的号牌", "Your bidder code"),
    "live.you_lead": ("您当前领先", "You are leading"),
    "live.bid.title": ("出价", "Bid"),
    "live.bid.amount": ("出价金额（元）", "Amount (CNY)"),
    "live.bid.min": (
        "最低可出价 {amount}，加价幅度 {increment}",
        "Least bid {amount}; increment {increment}",
    ),
    "live.bid.submit": ("确认出价", "Place bid"),
    "live.bid.plus1": ("+1 个加价幅度", "+1 increment"),
    "live.bid.plus5": ("+5 个加价幅度", "+5 increments"),
    "live.proxy.title": ("代理出价", "Proxy bid"),
    "live.proxy.max": ("最高限价（元）", "Your maximum (CNY)"),
    "live.proxy.submit": ("设置代理出价", "Set maximum"),
    "live.proxy.hint": (
        "系统在您的最高限价内，以最少所需的加价自动为您出价；同一最高价先设者优先。",
        "The exchange bids for you, the least needed, up to your maximum; between equal "
        "maxima the earlier one wins.",
    ),
    "live.proxy.standing": ("您当前的代理最高价：{amount}", "Your standing maximum: {amount}"),
    "live.match.submit": ("行使优先购买权（按当前价跟价）", "Match the highest bid"),
    "live.match.hint": (
        "您是第 {rank} 顺位优先购买权人：可按当前最高价跟价，同价时您优先。",
        "You hold the pre-emptive right of rank {rank}: you may match the highest bid and "
        "win the tie.",
    ),
    "live.deposit_needed": (
        "保证金确认到账后方可出价。",
        "You can bid once the exchange confirms your deposit.",
    ),
    "live.not_open_yet": ("竞价开始后方可出价。", "You can bid once bidding opens."),
    # outcomes
    "live.accepted.bid": ("出价成功 {amount}", "Bid accepted: {amount}"),
    "live.accepted.proxy": ("代理出价已设置，最高 {amount}", "Proxy maximum set: {amount}"),
    "live.accepted.match": ("已行使优先购买权，跟价 {amount}", "Matched at {amount}"),
    "live.accepted.outbid": (
        "其他竞买人的代理出价已超过您，当前价 {amount}。",
        "Another bidder's proxy outbid you; the price is now {amount}.",
    ),
    "live.refused": ("出价未成功", "Bid refused"),
    "live.refused.too_low": (
        "出价过低：最低可出价 {min}。",
        "Too low: the least bid now is {min}.",
    ),
    "live.refused.not_on_increment": (
        "出价须为当前价加整数个加价幅度（{increment}）。",
        "A bid is the current price plus a whole number of increments ({increment}).",
    ),
    "live.refused.not_fixed_price": (
        "变卖须以变卖价 {start} 出价。",
        "The fixed-price sale opens with a bid of exactly {start}.",
    ),
    "live.refused.lot_not_open": ("竞价尚未开始。", "Bidding has not opened yet."),
    "live.refused.lot_closed": ("竞价已结束。", "Bidding on this lot has closed."),
    "live.refused.already_leading": (
        "您已是最高出价人，无需再次出价。",
        "You already hold the highest bid.",
    ),
    "live.refused.not_preemptive": (
        "只有优先购买权人可以跟价。",
        "Only a pre-emptive right holder may match a bid.",
    ),
    "live.refused.nothing_to_match": ("尚无出价可跟。", "There is no bid to match yet."),
    "live.refused.outranked": (
        "该价格已由顺位相同或在先的优先购买权人持有。",
        "A pre-emptive holder of the same or a better rank holds this price.",
    ),
    "live.refused.proxy_below_next": (
        "代理最高价须不低于 {min}。",
        "A proxy maximum must be at least {min}.",
    ),
    "live.refused.proxy_not_raised": (
        "新的代理最高价须高于您原有的最高价。",
        "A new proxy maximum must be higher than your standing one.",
    ),
    "live.refused.unsupported": (
        "本轮不接受该出价方式。",
        "This round does not take that kind of bid.",
    ),
    "live.refused.deposit_not_confirmed": (
        "保证金尚未确认到账，暂不能出价。",
        "Your deposit has not been confirmed yet.",
    ),
    "live.refused.not_registered": (
        "请先报名本轮竞价并缴纳保证金。",
        "Register for this round of the lot and pay the deposit first.",
    ),
    "live.refused.rate_limited": (
        "出价过于频繁，请稍后再试。",
        "Too many bids in a short time; try again in a moment.",
    ),
    "live.refused.idempotency_key_reused": (
        "此表单已用于另一笔出价，请刷新页面后重试。",
        "This form was used for another bid; reload the page and try again.",
    ),
    "live.refused.retry": (
        "系统繁忙，本次出价未记录，请重试。",
        "The bid could not be recorded; nothing was written. Please try again.",
    ),
    "live.refused.forbidden": (
        "仅经交易所审核的竞买人可以出价。",
        "Only buyers approved by the exchange bid.",
    ),
    "live.refused.other": ("出价未被接受：{message}", "Bid refused: {message}"),
    "live.error.amount": (
        "请输入有效金额，例如 700000 或 700,000.50。",
        "Enter an amount such as 700000 or 700,000.50.",
    ),
    "live.error.amount_positive": ("金额须大于零。", "The amount must be more than zero."),
    "live.error.type": ("未知的出价方式。", "Unknown kind of bid."),
}
