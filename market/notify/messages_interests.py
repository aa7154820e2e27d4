"""UI texts of the saved-interests page: key → (简体中文, English). Merged into market/i18n.py."""

MESSAGES: dict[str, tuple[str, str]] = {
    "interest.nav": ("我的订阅", "My interests"),
    "interest.title": ("拍品订阅", "Saved interests"),
    "interest.intro": (
        "保存您关注的 IPC 分类、关键词和价格区间。符合条件的拍品一经公告，即通过站内信、"
        "邮件等方式通知您。每项条件可填多个（用逗号或换行分隔），满足其中任一即可；"
        "同时填写的几类条件须全部满足。",
        "Save the IPC classes, keywords and price range you follow. When a matching lot is "
        "announced, you are told by inbox, e-mail and your other channels. Each criterion "
        "takes several values (separated by commas or new lines), any of which matches; "
        "every kind of criterion you fill in must match.",
    ),
    "interest.ipc": ("IPC 分类号（前缀）", "IPC classes (prefixes)"),
    "interest.ipc_hint": ("如：H01M, G06F 16/", "e.g. H01M, G06F 16/"),
    "interest.keywords": ("关键词", "Keywords"),
    "interest.keywords_hint": ("如：锂电池、图像识别", "e.g. 锂电池, image recognition"),
    "interest.price_min": ("起拍价不低于（元）", "Start price from (CNY)"),
    "interest.price_max": ("起拍价不高于（元）", "Start price up to (CNY)"),
    "interest.save": ("保存订阅", "Save interest"),
    "interest.saved": ("订阅已保存。", "Interest saved."),
    "interest.deleted": ("订阅已删除。", "Interest deleted."),
    "interest.delete": ("删除", "Delete"),
    "interest.none": ("尚无订阅。", "No saved interests yet."),
    "interest.mine": ("已保存的订阅", "Your interests"),
    "interest.any": ("不限", "Any"),
    "interest.col.ipc": ("IPC 分类", "IPC"),
    "interest.col.keywords": ("关键词", "Keywords"),
    "interest.col.price": ("起拍价区间", "Start price"),
    "interest.col.created": ("保存时间", "Saved"),
    "interest.limit": ("每位用户最多保存 {count} 条订阅。", "At most {count} interests per user."),
}
