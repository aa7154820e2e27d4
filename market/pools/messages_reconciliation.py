"""Texts of the reconciliation pages of the pools area (key: (zh, en))."""

from __future__ import annotations

MESSAGES: dict[str, tuple[str, str]] = {
    "recon.title": ("对账", "Reconciliation"),
    "recon.intro": (
        "导入银行对账单（实际到账的转账），系统按附言中的转账编号、金额和日期自动匹配应收回款；"
        "无法自动匹配的行列在下方并说明原因，可人工匹配（留痕审计）。",
        "Import a bank statement of the transfers actually received: lines are matched to the "
        "expected recoveries by the transfer reference in the message, the amount and the "
        "date; lines that do not match are listed below with the reason and can be matched "
        "by hand (audited).",
    ),
    "recon.upload.title": ("导入对账单", "Import a statement"),
    "recon.upload.help": (
        "CSV 文件（UTF-8 或 GB18030，最大 {max_mb} MB），需含列：交易日期、金额、附言；"
        "可选：对方户名、流水号。其他列忽略；支出行自动跳过。同一文件只能导入一次，"
        "流水号相同的交易不会重复记录。",
        "A CSV file (UTF-8 or GB18030, at most {max_mb} MB) with the columns date, amount and "
        "reference; optional: counterparty, bank txn id. Other columns are ignored, outgoing "
        "payments skipped. A file is imported once; a transaction id already imported is not "
        "recorded again.",
    ),
    "recon.upload.template_zh": ("示例文件（中文表头）", "Example file (Chinese headers)"),
    "recon.upload.template_en": ("示例文件（英文表头）", "Example file (English headers)"),
    "recon.upload.file": ("对账单文件", "Statement file"),
    "recon.upload.submit": ("导入并对账", "Import and reconcile"),
    "recon.upload.rejected": (
        "文件未导入，未写入任何数据。请更正以下问题后重新上传：",
        "The file was not imported and nothing was written. Correct these and upload again:",
    ),
    "recon.col.line": ("行", "Line"),
    "recon.col.column": ("列", "Column"),
    "recon.col.reason": ("原因", "Reason"),
    "recon.col.value_date": ("入账日期", "Value date"),
    "recon.col.amount": ("金额", "Amount"),
    "recon.col.reference": ("附言", "Reference"),
    "recon.col.counterparty": ("对方户名", "Counterparty"),
    "recon.col.txn": ("流水号", "Txn id"),
    "recon.col.status": ("状态", "Status"),
    "recon.col.payout": ("匹配的转账", "Matched transfer"),
    "recon.col.candidate": ("可能对应", "Likely transfer"),
    "recon.col.match": ("人工匹配", "Match by hand"),
    "recon.col.aside_note": ("处理原因", "Why set aside"),
    "recon.col.statement": ("对账单", "Statement"),
    "recon.col.filename": ("文件名", "File"),
    "recon.col.imported_at": ("导入时间", "Imported"),
    "recon.col.imported_by": ("导入人", "By"),
    "recon.col.lines": ("行数", "Lines"),
    "recon.col.matched": ("已匹配", "Matched"),
    "recon.col.open": ("待处理", "Open"),
    "recon.col.case": ("案件", "Case"),
    "recon.col.payee": ("收款方", "Payee"),
    "recon.col.created": ("应收日期", "Expected since"),
    "recon.col.transfer": ("转账编号", "Transfer reference"),
    "recon.col.open_amount": ("未到账金额", "Outstanding"),
    "recon.col.export": ("导出", "Export"),
    "recon.statements.title": ("已导入的对账单", "Imported statements"),
    "recon.statements.none": ("尚未导入对账单。", "No statement imported yet."),
    "recon.exceptions.title": ("待处理的对账差异", "Open exceptions"),
    "recon.exceptions.none": ("没有待处理的差异。", "No open exceptions."),
    "recon.expected.title": ("待到账的应收回款", "Expected recoveries not yet received"),
    "recon.expected.none": ("没有待到账的应收回款。", "Nothing is waiting to be received."),
    "recon.match.reference": ("转账编号", "Transfer reference"),
    "recon.match.note": ("备注（可选）", "Note (optional)"),
    "recon.match.submit": ("匹配", "Match"),
    "recon.match.done": ("已人工匹配第 {line} 行。", "Line {line} was matched by hand."),
    "recon.aside.note": (
        "非应收回款的原因（如银行结息、其他款项、重复转账待退回）",
        "Why it is no expected recovery (e.g. bank interest, another payment, "
        "a duplicate to return)",
    ),
    "recon.aside.placeholder": ("另行处理原因（必填）", "Why set aside (required)"),
    "recon.aside.submit": ("另行处理", "Set aside"),
    "recon.aside.title": ("已另行处理的流水（{count} 笔）", "Lines set aside ({count})"),
    "recon.aside.done": (
        "第 {line} 行已另行处理，不计入回款；如确属回款，仍可在对账单中人工匹配。",
        "Line {line} was set aside, not counted as a recovery; it can still be matched by hand.",
    ),
    "recon.exports.title": ("导出对账表（CSV）", "Export statements (CSV)"),
    "recon.exports.help": (
        "应收、已到账和已撤销的回款，含转账编号、金额、案件、回款类型、日期及对账单行。"
        "文件为带 BOM 的 UTF-8，可直接用 Excel 打开。",
        "Expected, received and reversed payouts with reference, amount, case, receipt kind, "
        "dates and statement line; UTF-8 with BOM, opens in Excel.",
    ),
    "recon.exports.pool": ("资金池 {code}", "Pool {code}"),
    "recon.exports.bank": ("本行全部回款", "All payouts to this bank"),
    "recon.exports.cases": ("按案件", "By case"),
    "recon.exports.since": ("起始日期", "From"),
    "recon.exports.until": ("截止日期", "To"),
    "recon.exports.apply": ("设定期间", "Set the period"),
    "recon.exports.all": ("下列链接导出全部期间。", "The links below export all time."),
    "recon.exports.period": (
        "下列链接导出 {since} 至 {until} 期间应收或到账的回款。",
        "The links below export the payouts expected or received from {since} to {until}.",
    ),
    "recon.exports.zh": ("中文", "Chinese"),
    "recon.exports.en": ("英文", "English"),
    "recon.statement.title": ("对账单 {id}", "Statement {id}"),
    "recon.statement.summary": (
        "共 {lines} 行：自动匹配 {matched}，人工匹配 {manual}，"
        "另行处理 {set_aside}，待处理 {open}。",
        "{lines} lines: {matched} matched automatically, {manual} by hand, {set_aside} set aside, "
        "{open} open.",
    ),
    "recon.statement.skipped": (
        "{count} 行的流水号已在之前的对账单中导入，已跳过。",
        "{count} lines were on an earlier statement (same txn id) and were skipped.",
    ),
    "recon.statement.back": ("返回对账", "Back to reconciliation"),
    "recon.by": ("{name} 于 {at}", "{name} at {at}"),
    # line statuses
    "recon.line.matched": ("自动匹配", "Matched"),
    "recon.line.manual": ("人工匹配", "Matched by hand"),
    "recon.line.amount_mismatch": ("金额不符", "Amount mismatch"),
    "recon.line.reference_typo": ("附言疑似有误", "Reference typo"),
    "recon.line.unknown": ("无法识别", "Unknown transfer"),
    "recon.line.set_aside": ("另行处理", "Set aside"),
    # payout statuses
    "recon.payout.expected": ("待到账", "Expected"),
    "recon.payout.received": ("已到账", "Received"),
    "recon.payout.reversed": ("已撤销", "Reversed"),
    # receipt kinds
    "recon.receipt.auction": ("拍卖成交", "Auction"),
    "recon.receipt.fixed_price": ("定价转让", "Fixed-price sale"),
    "recon.receipt.forfeit": ("没收保证金", "Forfeited deposit"),
    "recon.receipt.licence_fee": ("许可费", "Licence fee"),
    "recon.receipt.royalty": ("提成费", "Royalty"),
    "recon.receipt.other": ("其他", "Other"),
    # CSV export columns
    "recon.export.reference": ("转账编号", "reference"),
    "recon.export.amount": ("金额（元）", "amount (CNY)"),
    "recon.export.status": ("状态", "status"),
    "recon.export.case": ("案件编号", "case"),
    "recon.export.receipt_kind": ("回款类型", "receipt kind"),
    "recon.export.payee": ("收款方", "payee"),
    "recon.export.created_on": ("应收日期", "expected since"),
    "recon.export.received_on": ("到账日期", "received on"),
    "recon.export.statement": ("对账单", "statement"),
    "recon.export.line_no": ("对账单行号", "statement line"),
    "recon.export.value_date": ("入账日期", "value date"),
    "recon.export.matched": ("匹配方式", "matched"),
}
