"""The sandbox panel's catalog: real-looking services covering every order type."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    id: int
    name: str
    type: str  # canonical order-type name
    category: str
    rate: Decimal  # per 1000, or the package price
    min: int
    max: int
    refill: bool = False
    cancel: bool = False
    dripfeed: bool = False
    description: str = ""


def _e(id_: int, name: str, type_: str, category: str, rate: str, low: int, high: int,
       flags: str = "", description: str = "") -> CatalogEntry:
    """``flags``: r = refill, c = cancel, d = drip-feed."""
    return CatalogEntry(id_, name, type_, category, Decimal(rate), low, high,
                        "r" in flags, "c" in flags, "d" in flags, description)


DEFAULT_CATALOG: tuple[CatalogEntry, ...] = (
    # Instagram
    _e(101, "Instagram Followers [Real, 30 days refill]", "Default", "Instagram Followers",
       "1.20", 100, 100_000, "rcd", "Real-looking profiles. Start 0-1 h, 5-10K/day."),
    _e(102, "Instagram Followers [Cheap, no refill]", "Default", "Instagram Followers",
       "0.45", 50, 20_000, "c", "Low quality, drops possible."),
    _e(103, "Instagram Likes [Instant]", "Default", "Instagram Likes", "0.25", 50, 50_000, "cd",
       "Starts within minutes."),
    _e(104, "Instagram Reel Views", "Default", "Instagram Views", "0.02", 100, 10_000_000, "d"),
    _e(105, "Instagram Story Views [All stories]", "Default", "Instagram Views", "0.05",
       100, 100_000),
    _e(106, "Instagram Custom Comments", "Custom Comments", "Instagram Comments", "8.00", 5, 500,
       "c", "One comment per line. No links, no offensive words."),
    _e(107, "Instagram 10 Random Comments [Package]", "Package", "Instagram Comments", "1.50", 1, 1),
    _e(108, "Instagram 5 Custom Comments [Package]", "Custom Comments Package",
       "Instagram Comments", "2.90", 1, 1),
    _e(109, "Instagram Mentions [Custom usernames]", "Mentions", "Instagram Mentions", "3.50",
       100, 20_000),
    _e(110, "Instagram Mentions with Hashtags", "Mentions with Hashtags", "Instagram Mentions",
       "4.00", 100, 10_000),
    _e(111, "Instagram Mentions [Custom list]", "Mentions Custom List", "Instagram Mentions",
       "5.00", 10, 1_000),
    _e(112, "Instagram Mentions [From hashtag]", "Mentions Hashtag", "Instagram Mentions", "3.00",
       500, 50_000),
    _e(113, "Instagram Mentions [User followers]", "Mentions User Followers",
       "Instagram Mentions", "3.20", 500, 50_000),
    _e(114, "Instagram Mentions [Media likers]", "Mentions Media Likers", "Instagram Mentions",
       "3.40", 500, 50_000),
    _e(115, "Instagram Comment Likes", "Comment Likes", "Instagram Likes", "2.00", 50, 10_000, "c"),
    _e(116, "Instagram Auto Likes [Future posts]", "Subscriptions", "Instagram Auto Likes", "0.30",
       50, 5_000, "", "Likes arrive on each new post."),
    # TikTok
    _e(201, "TikTok Followers [Refill 30 days]", "Default", "TikTok Followers", "2.10", 100,
       50_000, "rc"),
    _e(202, "TikTok Likes", "Default", "TikTok Likes", "0.40", 100, 100_000, "cd"),
    _e(203, "TikTok Video Views", "Default", "TikTok Views", "0.01", 1_000, 50_000_000, "d"),
    _e(204, "TikTok Shares", "Default", "TikTok Shares", "0.35", 100, 1_000_000),
    _e(205, "TikTok Custom Comments", "Custom Comments", "TikTok Comments", "9.00", 10, 1_000, "c"),
    _e(206, "TikTok Comment Replies", "Comment Replies", "TikTok Comments", "12.00", 5, 500),
    _e(207, "TikTok Live Stream Views [30 min]", "Default", "TikTok Live", "4.50", 50, 10_000),
    # YouTube
    _e(301, "YouTube Views [Non-drop, lifetime refill]", "Default", "YouTube Views", "1.80", 500,
       1_000_000, "rcd"),
    _e(302, "YouTube Subscribers [Refill 30 days]", "Default", "YouTube Subscribers", "14.00",
       50, 20_000, "rc"),
    _e(303, "YouTube Likes", "Default", "YouTube Likes", "1.10", 50, 100_000, "rc"),
    _e(304, "YouTube Custom Comments", "Custom Comments", "YouTube Comments", "15.00", 5, 500),
    _e(305, "YouTube Comment Likes", "Comment Likes", "YouTube Likes", "3.00", 20, 5_000),
    _e(306, "YouTube Starter Package [1K views + 100 likes]", "Package", "YouTube Packages",
       "4.90", 1, 1),
    # Telegram
    _e(401, "Telegram Channel Members [Refill 30 days]", "Default", "Telegram Members", "1.50",
       100, 50_000, "rcd"),
    _e(402, "Telegram Post Views [Last 1 post]", "Default", "Telegram Views", "0.03", 100,
       1_000_000, "d"),
    _e(403, "Telegram Poll Votes", "Poll", "Telegram Polls", "1.20", 50, 50_000),
    _e(404, "Telegram Reactions [Positive mix]", "Default", "Telegram Reactions", "0.20", 20,
       100_000, "c"),
    _e(405, "Telegram Group Members [Invites from groups]", "Invites from Groups",
       "Telegram Members", "6.00", 100, 10_000),
    _e(406, "Telegram Auto Views [Future posts]", "Subscriptions", "Telegram Auto Views",
       "0.04", 100, 50_000),
    # Facebook
    _e(501, "Facebook Page Likes", "Default", "Facebook Page Likes", "2.40", 100, 50_000, "rc"),
    _e(502, "Facebook Post Likes", "Default", "Facebook Post Likes", "0.90", 50, 20_000, "c"),
    _e(503, "Facebook Followers", "Default", "Facebook Followers", "1.90", 100, 100_000, "r"),
    _e(504, "Facebook Video Views", "Default", "Facebook Video Views", "0.30", 500, 1_000_000, "d"),
    # X / Twitter
    _e(601, "X (Twitter) Followers", "Default", "Twitter Followers", "3.20", 100, 20_000, "rc"),
    _e(602, "X (Twitter) Likes", "Default", "Twitter Likes", "1.00", 20, 10_000, "c"),
    _e(603, "X (Twitter) Retweets", "Default", "Twitter Retweets", "1.40", 20, 10_000),
    _e(604, "X (Twitter) Poll Votes", "Poll", "Twitter Polls", "2.50", 100, 10_000),
    # Spotify
    _e(701, "Spotify Plays [Premium accounts]", "Default", "Spotify Plays", "0.90", 1_000,
       10_000_000, "rd"),
    _e(702, "Spotify Followers", "Default", "Spotify Followers", "1.30", 100, 100_000, "r"),
    _e(703, "Spotify Monthly Listeners", "Default", "Spotify Listeners", "2.20", 500, 500_000),
    # Website traffic
    _e(801, "Website Traffic [Google keyword, worldwide]", "Web Traffic", "Website Traffic",
       "0.60", 1_000, 1_000_000, "d", "Visitors search a Google keyword and open your site."),
    _e(802, "Website Traffic [Social referrers]", "Web Traffic", "Website Traffic", "0.45", 1_000,
       1_000_000),
    _e(803, "SEO Keyword Backlinks", "SEO", "Website Traffic", "5.00", 100, 10_000),
)


def generated_catalog(size: int) -> tuple[CatalogEntry, ...]:
    """A catalog of ``size`` services (for benchmarks): the default one, repeated."""
    entries: list[CatalogEntry] = []
    for index in range(size):
        base = DEFAULT_CATALOG[index % len(DEFAULT_CATALOG)]
        round_ = index // len(DEFAULT_CATALOG)
        entries.append(CatalogEntry(
            10_000 + index, f"{base.name} #{round_}", base.type, base.category,
            base.rate + Decimal(round_ % 50) / 100, base.min, base.max, base.refill, base.cancel,
            base.dripfeed, base.description,
        ))
    return tuple(entries)
