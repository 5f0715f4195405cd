"""Word lists for the spelling rule: the workspace's house list, ``words.txt``, the names and
words its dictionary lacks; and the words digest adds to the English dictionary for everyone.

``words.txt`` has one word a line; ``#`` starts a comment (a whole line, or after a space at the
end of one); blank lines are fine. Words match in any case: ``pinduoduo`` accepts ``Pinduoduo``.
The spelling rule reads the file at every lint (``digestcli.lint.spelling``); ``add_words`` is
what ``digest lint --add-word`` and ``digest words add`` call, ``list_words`` what
``digest words list`` shows. Light on purpose: the CLI imports it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from digestcli.errors import UsageError, read_text, write_atomically

WORDS_FILE = "words.txt"

# Words of today's news that pyspellchecker's English list (which dates from before them) lacks,
# added to it for every workspace: technology, business, health, climate, culture, and a few
# older words it lacks too (perilla). Hyphenated words need not be here (each part is checked),
# nor British spellings (made from the American ones, as for the rest of the list). Then a few
# names always written in lower case, which capitals cannot mark as names.
ENGLISH_ADDITIONS = """
adtech adware agritech allowlist altcoin altcoins analytics app apps autocomplete autocorrect
backend benchmarked bikeshare biobank biosimilar biosimilars biotechs blockchain blockchains
blocklist bot botnet botnets bugfix carmaker carmakers carsharing catfishing changelog chatbot
chatbots chatrooms chipmaker chipmakers chipset chipsets cleantech clickbait coliving contactless
cosplay covid coworking crowdfunded crowdfunding crowdsourced crowdsourcing crypto cryptocurrencies
cryptocurrency cryptojacking cryptos cubesat cubesats cyberattack cyberattacks cyberbullying
cybercrime cybercriminal cybercriminals cybersecurity datacenter datacenters dataset datasets
decacorn decarbonization decarbonize decarbonized deepfake deepfakes deeptech deglobalization
derisking docuseries doomscrolling doxxed doxxing driverless dronemaker dropshipping earbud earbuds
ebike ebikes ebook ebooks ecommerce edtech electrolyzer electrolyzers emoji emojis esports exascale
exoplanet exoplanets factcheck factchecker factcheckers failover fintech fintechs flexitarian
foldable foldables foodtech friendshoring frontend fundraise fundraises gameplay gamification
gamified gamify geoengineering geofencing geolocation geotagged gigafactories gigafactory googled
greenlight greenlighted greenlit greenwashing hackathon hackathons hashtag hashtags healthtech
heatpump heatpumps homeownership hotfix hotfixes hyperscaler hyperscalers hypervisor hypervisors
inbox inboxes influencer influencers instagrammable insurtech jailbroken keto lidar lifehack
lifehacks livestream livestreamed livestreamer livestreamers livestreaming livestreams lockdown
lockdowns logins logout malware manga medtech megacap megacities megacity memecoin memecoins memes
metadata metaverse microbiome microbiomes microblog microblogging microfinance microgrid microgrids
microloan microloans micromobility microplastic microplastics microtransaction microtransactions
middleware midrange monetization mpox multicloud multimodal nanotech nearshoring neobank neobanks
offshoring omnichannel onboard onboarded onboarding onshoring overtourism paywall paywalled paywalls
perilla photobomb playtest playtesting podcaster podcasters podcasting podcasts preheader preheaders
pretrained pretraining proptech proteomics qubit qubits ransomware rebrand rebranded rebranding
rebrands regtech renewables reshoring reskill reskilling retweet retweeted retweets rewilding
rideshare ridesharing roadmap roadmaps robotaxi robotaxis rollout rollouts sandboxed satnav scaleup
scaleups scammer scammers screencast screenshot screenshots selfie selfies serverless sexting
showrunner showrunners sitewide smartcard smartglasses smartphone smartphones smartwatch
smartwatches smishing spammy spyware stablecoin stablecoins stalkerware staycation staycations
subreddit subreddits superapp superapps superchip superchips superfan superfans superfood superfoods
telehealth telemedicine telework teleworking terawatt terawatts timestamp timestamps todo todos
tokenization tokenized toolkits ultrafast ultraprocessed unboxing unfollow unfollowed unfriend
unvaccinated upcycled upcycling upskill upskilled upskilling uptime upzoning usernames
videoconference videoconferencing virality virtualization vishing vlog vlogger vloggers vlogs
walkability wastewater wearables webinar webinars webpages webtoon webtoons wellbeing whitelist wifi
workaround workarounds youtuber youtubers
realme vivo
"""


def words_path(root: Path) -> Path:
    """Where a workspace keeps its house word list: ``words.txt`` in its root folder."""
    return Path(root) / WORDS_FILE


def _word_of(line: str) -> str:
    """The word on one line of the file ('' for a blank or comment line)."""
    text = line.strip()
    if text.startswith("#"):
        return ""
    for mark in (" #", "\t#"):
        if mark in text:
            text = text.split(mark, 1)[0].strip()
    return text


def list_words(root: Path) -> list[str]:
    """The house words of the workspace at ``root`` as the file writes them (``Pinduoduo``), in
    its order; empty when it has no words.txt. Raises InputError as ``read_words`` does."""
    path = words_path(root)
    if not path.exists():
        return []
    return [w for w in map(_word_of, read_text(path, "word list").splitlines()) if w]


def read_words(root: Path) -> frozenset[str]:
    """The house words of the workspace at ``root``, casefolded, as the spelling rule matches
    them; empty when it has no words.txt. Raises InputError for a words.txt that cannot be read
    (not UTF-8, a directory)."""
    return frozenset(w.casefold() for w in list_words(root))


def check_word(word: str) -> str:
    """A word as the list keeps it (without spaces or quotes around it, as a finding shows it:
    'raibh'); UsageError for one that cannot be a line of it."""
    text = word.strip().strip("'\"‘’“”").strip()
    if not text:
        raise UsageError("an empty word cannot be added to the word list")
    if any(c.isspace() for c in text) or text.startswith("#") or " #" in text:
        raise UsageError(
            f"'{text}' is not one word: words.txt holds one word a line",
            hint="add each word of a name on its own",
        )
    return text


def add_words(root: Path, words: Iterable[str]) -> list[str]:
    """Add ``words`` to the workspace's ``words.txt`` (made if missing), keeping the list sorted
    (by casefolded word) and free of duplicates (in any case); returns the words it added, in
    the order given. The comment lines at the top of the file stay at the top; a comment line
    further down stays above the word it precedes, and a comment after a word stays with it.
    Raises UsageError for a word with a space in it, InputError when the file cannot be read or
    written."""
    wanted = [check_word(w) for w in words]
    path = words_path(root)
    lines = read_text(path, "word list").splitlines() if path.exists() else []

    header: list[str] = []
    entries: list[tuple[str, list[str]]] = []  # (word, its lines: the comments above it, itself)
    pending: list[str] = []
    for line in lines:
        word = _word_of(line)
        if not word:
            (header if not entries else pending).append(line)
            continue
        entries.append((word, [*pending, line]))
        pending = []

    known = {word.casefold() for word, _ in entries}
    added: list[str] = []
    for word in wanted:
        if word.casefold() not in known:
            known.add(word.casefold())
            entries.append((word, [word]))
            added.append(word)
    if not added:
        return []
    entries.sort(key=lambda entry: (entry[0].casefold(), entry[0]))
    body = [line for _, group in entries for line in group]
    text = "\n".join([*header, *body, *pending]) + "\n"
    write_atomically(path, text.encode("utf-8"), what="word list")
    return added
