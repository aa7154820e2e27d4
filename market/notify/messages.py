"""UI texts of notifications (inbox, preferences, the operator's failures): key →
(简体中文, English). Merged into market/i18n.py. The messages themselves are templates
(templates/email/<event>/), not entries here."""

MESSAGES: dict[str, tuple[str, str]] = {
    "notify.nav.inbox": ("消息", "Inbox"),
    "notify.nav.failed": ("通知失败", "Failed notifications"),
    # the inbox
    "notify.inbox.title": ("消息中心", "Inbox"),
    "notify.inbox.empty": ("暂无消息。", "No messages."),
    "notify.inbox.unread": ("未读 {n} 条", "{n} unread"),
    "notify.inbox.unread_label": ("未读消息", "Unread messages"),
    "notify.inbox.mark_read": ("标为已读", "Mark read"),
    "notify.inbox.mark_all_read": ("全部标为已读", "Mark all read"),
    "notify.inbox.read": ("已读", "Read"),
    "notify.inbox.new": ("未读", "New"),
    "notify.inbox.received": ("时间", "When"),
    "notify.inbox.older": ("更早的消息", "Older messages"),
    "notify.inbox.only_unread": ("只看未读", "Unread only"),
    "notify.inbox.all": ("全部消息", "All messages"),
    "notify.inbox.lot": ("查看拍品", "See the lot"),
    "notify.inbox.settings": ("通知设置", "Notification settings"),
    # preferences
    "notify.prefs.title": ("通知设置", "Notification settings"),
    "notify.prefs.intro": (
        "选择各类事件通过哪些渠道通知您。站内消息始终保留，电子邮件可按事件开关。",
        "Choose how you hear about each event. The inbox always keeps a copy; e-mail can "
        "be switched on or off per event.",
    ),
    "notify.prefs.event": ("事件", "Event"),
    "notify.prefs.inbox": ("站内消息", "Inbox"),
    "notify.prefs.email": ("电子邮件", "E-mail"),
    "notify.prefs.email_to": ("邮件发送至 {email}", "E-mail goes to {email}"),
    "notify.prefs.language": ("通知语言", "Language of notifications"),
    "notify.prefs.lang.zh": ("简体中文", "Simplified Chinese"),
    "notify.prefs.lang.en": ("英文", "English"),
    "notify.prefs.webhooks": (
        "如需推送到贵单位系统或企业微信、钉钉群，请由单位管理员配置 Webhook。",
        "To push notifications to your organisation's systems or a WeCom or DingTalk "
        "group, an administrator sets up a webhook.",
    ),
    "notify.prefs.save": ("保存", "Save"),
    "notify.prefs.saved": ("已保存。", "Saved."),
    # event names
    "notify.event.outbid": ("出价被超越", "Outbid"),
    "notify.event.extended": ("竞价延时", "Bidding extended"),
    "notify.event.ending_soon": ("即将结束提醒", "Ending soon"),
    "notify.event.bidding_opened": ("开始竞价", "Bidding opened"),
    "notify.event.deposit_confirmed": ("保证金到账", "Deposit confirmed"),
    "notify.event.deposit_released": ("保证金退还", "Deposit released"),
    "notify.event.won": ("竞得", "Won"),
    "notify.event.lost": ("未竞得", "Lost"),
    "notify.event.payment_due": ("待付款", "Payment due"),
    "notify.event.payment_overdue": ("付款逾期", "Payment overdue"),
    "notify.event.defaulted": ("悔拍", "Defaulted"),
    "notify.event.lot_matched": ("订阅匹配的新拍品", "Lot matching a saved search"),
    "notify.event.monitoring_flag": ("质押物监测提示", "Collateral monitoring flag"),
    # the operator's failed deliveries
    "notify.failed.title": ("通知投递失败", "Failed notifications"),
    "notify.failed.intro": (
        "以下通知在重试计划用尽后仍未送达，或遇到不可重试的错误。排除原因后可重新投递。",
        "These notifications were not delivered after every scheduled retry, or met an "
        "error that retrying cannot fix. Fix the cause, then replay them.",
    ),
    "notify.failed.none": ("没有失败的通知。", "No failed notifications."),
    "notify.failed.id": ("编号", "No."),
    "notify.failed.event": ("事件", "Event"),
    "notify.failed.channel": ("渠道", "Channel"),
    "notify.failed.target": ("对象", "Target"),
    "notify.failed.attempts": ("尝试次数", "Attempts"),
    "notify.failed.error": ("错误", "Error"),
    "notify.failed.when": ("事件时间", "Event time"),
    "notify.failed.replay": ("重新投递", "Replay"),
    "notify.failed.replay_all": ("全部重新投递", "Replay all"),
    "notify.failed.replayed": ("已重新排入投递队列：{n} 条。", "{n} queued for delivery again."),
    "notify.channel.inbox": ("站内消息", "Inbox"),
    "notify.channel.email": ("电子邮件", "E-mail"),
    "notify.channel.webhook": ("Webhook 推送", "Webhook"),
}
