"""UI texts of closing and settlement: key → (简体中文, English). Merged into market/i18n.py."""

MESSAGES: dict[str, tuple[str, str]] = {
    "payments.title": ("成交价款到账确认", "Payments due"),
    "payments.intro": (
        "买受人须在付款期限内按付款识别码汇付成交余款；到账后请在此按识别码和金额确认。",
        "Winners transfer the balance under the sale's payment reference by the deadline; "
        "confirm each transfer here by its reference and amount.",
    ),
    "payments.none": ("暂无待付款的成交。", "No sale is awaiting payment."),
    "payments.lot": ("拍品", "Lot"),
    "payments.buyer": ("买受人", "Buyer"),
    "payments.price": ("成交价", "Price"),
    "payments.fee": ("佣金", "Fee"),
    "payments.deposit": ("保证金抵扣", "Deposit applied"),
    "payments.balance": ("应付余款", "Balance due"),
    "payments.due": ("付款期限（北京时间）", "Due (Beijing time)"),
    "payments.reference": ("付款识别码", "Payment reference"),
    "payments.amount": ("到账金额（元）", "Amount received (CNY)"),
    "payments.overdue": ("已逾期", "Overdue"),
    "payments.confirm": ("确认到账", "Confirm payment"),
    "payments.confirm_title": ("登记到账", "Record a transfer"),
    "payments.paid": (
        "已确认付款 {reference}：余款 {amount}，保证金已抵扣成交价。",
        "Payment {reference} recorded: balance {amount}; the deposit was applied to the price.",
    ),
    "payments.fee.commission": ("佣金（处置费用）", "Commission (disposal cost)"),
    "payments.fee.buyer_premium": ("买方佣金", "Buyer's premium"),
}
