#!/usr/bin/env python3
"""Generate the quickstart English-French corpus in ``data/quickstart/``.

Every sentence pair is produced here, by this project, from hand-written templates
and a hand-written lexicon; nothing is copied from an existing corpus. The output is
deterministic: running the script twice writes byte-identical files.

French is built as a list of words and then finished by one function that applies
the rules a template cannot see on its own: elision (``je aime`` -> ``j'aime``,
``ne est`` -> ``n'est``, ``le hôtel`` -> ``l'hôtel``), contraction (``à le`` ->
``au``, ``de les`` -> ``des``), the sentence-initial capital and French
punctuation spacing (``Es-tu fatigué ?``). Agreement (gender, number, person) is
decided by the templates from the lexicon.

Usage::

    python data/quickstart/generate.py [--out-dir data/quickstart]

Writes ``train.tsv``, ``valid.tsv`` and ``test.tsv``: one ``english<TAB>french``
pair per line, UTF-8, no header.
"""

from __future__ import annotations

import argparse
import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

Pair = tuple[str, str]
Agr = tuple[str, bool]  # (gender "m"/"f", plural) of whatever an adjective agrees with

MAX_WORDS = 8
TRAIN_SIZE = 6000
VALID_SIZE = 300
TEST_SIZE = 300
SPLIT_SEED = 0

DEFAULT_OUT_DIR = Path(__file__).resolve().parent

# Pairs that must land in the training split (the quickstart demo translates them).
MUST_BE_IN_TRAIN: tuple[Pair, ...] = (
    ("I am cold.", "J'ai froid."),
    ("I'm cold.", "J'ai froid."),
    ("I am hungry.", "J'ai faim."),
    ("I am not cold.", "Je n'ai pas froid."),
    ("She is tired.", "Elle est fatiguée."),
    ("They are happy.", "Ils sont heureux."),
    ("He is not tired.", "Il n'est pas fatigué."),
    ("I like apples.", "J'aime les pommes."),
    ("We eat bread.", "Nous mangeons du pain."),
    ("She reads a book.", "Elle lit un livre."),
    ("Are you tired?", "Es-tu fatigué ?"),
    ("Where is the station?", "Où est la gare ?"),
    ("I am going to the station.", "Je vais à la gare."),
    ("He is at home.", "Il est à la maison."),
    ("It is cold.", "Il fait froid."),
)

# --------------------------------------------------------------------------------------
# French finishing: elision, contraction, capitals, punctuation.
# --------------------------------------------------------------------------------------

VOWELS = "aeiouyàâäéèêëîïôöûùüœ"
# Words starting with a silent ("mute") h: they take elision like a vowel.
H_MUET = frozenset(
    "habite habites habitons habitez habitent habiter heure heures hiver homme "
    "hommes hôpital hôpitaux hôtel hôtels".split()
)
ELIDABLE = frozenset({"je", "me", "te", "le", "la", "ne", "de", "que", "ce"})
CONTRACTIONS = {
    ("à", "le"): "au",
    ("à", "les"): "aux",
    ("de", "le"): "du",
    ("de", "les"): "des",
}


def starts_with_vowel_sound(word: str) -> bool:
    """Whether a French word elides the word before it (vowel or mute h)."""
    if not word:
        return False
    lower = word.lower()
    return lower[0] in VOWELS or lower.split("-")[0] in H_MUET


def finish_fr(words: Iterable[str], end: str = ".") -> str:
    """Turn French words into a finished sentence ending with ``end``.

    Applies elision, then the contractions au/aux/du/des, joins the words, adds the
    initial capital and puts a space before ``?`` and ``!`` as French typography
    requires.
    """
    tokens = [w for w in words if w]
    elided: list[str] = []
    for i, word in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if word.lower() in ELIDABLE and starts_with_vowel_sound(nxt):
            word = word[:-1] + "'"
        elided.append(word)
    merged: list[str] = []
    i = 0
    while i < len(elided):
        pair = (elided[i].lower(), elided[i + 1]) if i + 1 < len(elided) else None
        if pair in CONTRACTIONS:
            merged.append(CONTRACTIONS[pair])
            i += 2
        else:
            merged.append(elided[i])
            i += 1
    text = ""
    for word in merged:
        if not text or text.endswith("'") or word == ",":
            text += word
        else:
            text += " " + word
    text = text[0].upper() + text[1:]
    return text + (f" {end}" if end in "?!" else end)


def finish_en(words: Iterable[str], end: str = ".") -> str:
    """Turn English words into a sentence with an initial capital and ``end``."""
    text = " ".join(w for w in words if w).replace(" ,", ",")
    return text[0].upper() + text[1:] + end


def inverted(verb: str, pronoun: str) -> str:
    """French subject-verb inversion: ``aime il`` -> ``aime-t-il``."""
    needs_t = pronoun in ("il", "elle") and verb[-1] in "ae"
    return f"{verb}-t-{pronoun}" if needs_t else f"{verb}-{pronoun}"


# --------------------------------------------------------------------------------------
# Lexicon: nouns, subjects, verbs, adjectives.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Noun:
    """A noun in both languages, with French gender and both plurals."""

    en: str
    en_pl: str
    fr: str
    fr_pl: str
    gender: str  # "m" or "f"


def noun(
    en: str, fr: str, gender: str, en_pl: str | None = None, fr_pl: str | None = None
) -> Noun:
    """Build a :class:`Noun`; plurals default to adding ``s``."""
    return Noun(en, en_pl or en + "s", fr, fr_pl or fr + "s", gender)


NOUNS: dict[str, Noun] = {
    n.en: n
    for n in (
        # people and animals
        noun("boy", "garçon", "m"),
        noun("girl", "fille", "f"),
        noun("man", "homme", "m", en_pl="men"),
        noun("woman", "femme", "f", en_pl="women"),
        noun("child", "enfant", "m", en_pl="children"),
        noun("baby", "bébé", "m", en_pl="babies"),
        noun("mother", "mère", "f"),
        noun("father", "père", "m"),
        noun("brother", "frère", "m"),
        noun("sister", "sœur", "f"),
        noun("friend", "ami", "m"),
        noun("parent", "parent", "m"),
        noun("cat", "chat", "m"),
        noun("dog", "chien", "m"),
        noun("bird", "oiseau", "m", fr_pl="oiseaux"),
        noun("horse", "cheval", "m", fr_pl="chevaux"),
        # food and drink
        noun("apple", "pomme", "f"),
        noun("banana", "banane", "f"),
        noun("orange", "orange", "f"),
        noun("strawberry", "fraise", "f", en_pl="strawberries"),
        noun("egg", "œuf", "m"),
        noun("bread", "pain", "m"),
        noun("cheese", "fromage", "m"),
        noun("cake", "gâteau", "m", fr_pl="gâteaux"),
        noun("rice", "riz", "m"),
        noun("soup", "soupe", "f"),
        noun("meat", "viande", "f"),
        noun("fish", "poisson", "m", en_pl="fish"),
        noun("chocolate", "chocolat", "m"),
        noun("water", "eau", "f"),
        noun("milk", "lait", "m"),
        noun("coffee", "café", "m"),
        noun("tea", "thé", "m"),
        noun("orange juice", "jus d'orange", "m"),
        noun("wine", "vin", "m"),
        noun("glass of water", "verre d'eau", "m"),
        # things
        noun("book", "livre", "m"),
        noun("newspaper", "journal", "m", fr_pl="journaux"),
        noun("letter", "lettre", "f"),
        noun("message", "message", "m"),
        noun("magazine", "magazine", "m"),
        noun("menu", "menu", "m"),
        noun("car", "voiture", "f"),
        noun("bike", "vélo", "m"),
        noun("bus", "bus", "m", en_pl="buses", fr_pl="bus"),
        noun("train", "train", "m"),
        noun("taxi", "taxi", "m"),
        noun("plane", "avion", "m"),
        noun("subway", "métro", "m"),
        noun("ticket", "billet", "m"),
        noun("key", "clé", "f"),
        noun("phone", "téléphone", "m"),
        noun("computer", "ordinateur", "m"),
        noun("bag", "sac", "m"),
        noun("umbrella", "parapluie", "m"),
        noun("pen", "stylo", "m"),
        noun("watch", "montre", "f", en_pl="watches"),
        noun("door", "porte", "f"),
        noun("window", "fenêtre", "f"),
        noun("box", "boîte", "f", en_pl="boxes"),
        noun("bottle", "bouteille", "f"),
        noun("glass", "verre", "m", en_pl="glasses"),
        noun("table", "table", "f"),
        noun("chair", "chaise", "f"),
        noun("flower", "fleur", "f"),
        noun("shoe", "chaussure", "f"),
        noun("shirt", "chemise", "f"),
        noun("dress", "robe", "f", en_pl="dresses"),
        noun("hat", "chapeau", "m", fr_pl="chapeaux"),
        noun("film", "film", "m"),
        noun("song", "chanson", "f"),
        noun("music", "musique", "f"),
        noun("radio", "radio", "f"),
        noun("TV", "télévision", "f"),
        noun("idea", "idée", "f"),
        noun("question", "question", "f"),
        noun("seat", "place", "f"),
        # places
        noun("house", "maison", "f"),
        noun("room", "chambre", "f"),
        noun("kitchen", "cuisine", "f"),
        noun("garden", "jardin", "m"),
        noun("station", "gare", "f"),
        noun("school", "école", "f"),
        noun("park", "parc", "m"),
        noun("market", "marché", "m"),
        noun("beach", "plage", "f", en_pl="beaches"),
        noun("cinema", "cinéma", "m"),
        noun("museum", "musée", "m"),
        noun("hospital", "hôpital", "m", fr_pl="hôpitaux"),
        noun("airport", "aéroport", "m"),
        noun("bank", "banque", "f"),
        noun("library", "bibliothèque", "f", en_pl="libraries"),
        noun("office", "bureau", "m", fr_pl="bureaux"),
        noun("restaurant", "restaurant", "m"),
        noun("church", "église", "f", en_pl="churches"),
        noun("pool", "piscine", "f"),
        noun("hotel", "hôtel", "m"),
        noun("bakery", "boulangerie", "f", en_pl="bakeries"),
        noun("shop", "magasin", "m"),
        noun("city", "ville", "f", en_pl="cities"),
        noun("street", "rue", "f"),
        noun("sea", "mer", "f"),
        noun("mountain", "montagne", "f"),
        noun("moon", "lune", "f"),
        # languages (used without article: "Je parle français.")
        noun("French", "français", "m"),
        noun("English", "anglais", "m"),
        noun("Spanish", "espagnol", "m"),
        noun("German", "allemand", "m"),
        noun("Italian", "italien", "m"),
        noun("Chinese", "chinois", "m"),
    )
}

# Possessive determiners by owner's conjugation slot: (masc. sg, fem. sg, plural).
POSS_FR: dict[int, tuple[str, str, str]] = {
    0: ("mon", "ma", "mes"),
    1: ("ton", "ta", "tes"),
    2: ("son", "sa", "ses"),
    3: ("notre", "notre", "nos"),
    4: ("votre", "votre", "vos"),
    5: ("leur", "leur", "leurs"),
}
POSS_EN: dict[int, str] = {0: "my", 1: "your", 3: "our", 4: "your", 5: "their"}
# Things one person owns: "our watch" sounds odd ("our shoes" does not).
PERSONAL_ITEMS = frozenset(
    {"bag", "phone", "umbrella", "pen", "bike", "shoe", "dress", "hat", "watch"}
    | {"seat"}
)
# English possessive -> French owner slot, for "my book" and the like.
OWNERS: tuple[tuple[str, int], ...] = (
    ("my", 0),
    ("his", 2),
    ("her", 2),
    ("our", 3),
    ("their", 5),
)


def odd_owner(key: str, plural: bool, owner_en: str) -> bool:
    """Whether "our/their <one personal item>" would sound odd."""
    return key in PERSONAL_ITEMS and not plural and owner_en in ("our", "their")


def an(word: str) -> str:
    """English indefinite article for ``word``."""
    return "an" if word[0].lower() in "aeiou" else "a"


def fr_np(n: Noun, det: str, plural: bool = False, owner: int = 0) -> list[str]:
    """French noun phrase.

    ``det`` is one of ``def`` (le/la/les), ``gen`` (generic, also le/la/les),
    ``indef`` (un/une/des), ``part`` (du/de la/de l'/des), ``neg`` (de/d' after a
    negation), ``dem`` (ce/cet/cette/ces), ``poss`` (mon/ma/mes... for ``owner``)
    or ``bare`` (no determiner).
    """
    word = n.fr_pl if plural else n.fr
    fem = n.gender == "f"
    if det in ("def", "gen"):
        return ["les" if plural else ("la" if fem else "le"), word]
    if det == "indef":
        return ["des" if plural else ("une" if fem else "un"), word]
    if det == "part":
        return ["de", *fr_np(n, "def", plural)]
    if det == "neg":
        return ["de", word]
    if det == "dem":
        if plural:
            return ["ces", word]
        if fem:
            return ["cette", word]
        return ["cet" if starts_with_vowel_sound(word) else "ce", word]
    if det == "poss":
        masc, femi, plur = POSS_FR[owner]
        if plural:
            return [plur, word]
        # "mon école", "son amie": the masculine form before a vowel sound.
        use_masc = not fem or starts_with_vowel_sound(word)
        return [masc if use_masc else femi, word]
    if det == "bare":
        return [word]
    raise ValueError(f"unknown determiner {det!r}")


def en_np(n: Noun, det: str, plural: bool = False, owner_en: str = "my") -> str:
    """English noun phrase matching :func:`fr_np` (``owner_en`` for ``poss``)."""
    word = n.en_pl if plural else n.en
    if det == "def":
        return f"the {word}"
    if det == "indef":
        return word if plural else f"{an(word)} {word}"
    if det in ("gen", "part", "neg", "bare"):
        return word
    if det == "dem":
        return f"{'these' if plural else 'this'} {word}"
    if det == "poss":
        return f"{owner_en} {word}"
    raise ValueError(f"unknown determiner {det!r}")


def negated_det(det: str) -> str:
    """Determiner after ``ne ... pas``: un/une/des/du/de la become de."""
    return "neg" if det in ("indef", "part") else det


@dataclass(frozen=True)
class Subject:
    """A sentence subject: a pronoun or a noun phrase.

    ``slot`` is the conjugation slot (0 je, 1 tu, 2 il/elle, 3 nous, 4 vous,
    5 ils/elles); ``agr`` is what an adjective about the subject agrees with.
    """

    en: str
    fr: tuple[str, ...]
    slot: int
    agr: Agr
    human: bool = True

    @property
    def is_pronoun(self) -> bool:
        """Whether the subject is a personal pronoun."""
        return len(self.fr) == 1

    @property
    def en_poss(self) -> str:
        """English possessive determiner referring back to the subject."""
        if self.slot in POSS_EN:
            return POSS_EN[self.slot]
        if self.en == "he" or (not self.is_pronoun and self.agr[0] == "m"):
            return "his"
        return "her"


def pron(en: str, fr: str, slot: int, gender: str, plural: bool) -> Subject:
    """A pronoun subject."""
    return Subject(en, (fr,), slot, (gender, plural))


# I and you (tu) appear in both genders; we and you (vous) in the masculine plural,
# which French also uses for mixed groups.
PRONOUNS: tuple[Subject, ...] = (
    pron("I", "je", 0, "m", False),
    pron("I", "je", 0, "f", False),
    pron("you", "tu", 1, "m", False),
    pron("you", "tu", 1, "f", False),
    pron("he", "il", 2, "m", False),
    pron("she", "elle", 2, "f", False),
    pron("we", "nous", 3, "m", True),
    pron("you", "vous", 4, "m", True),
    pron("they", "ils", 5, "m", True),
    pron("they", "elles", 5, "f", True),
)
# Pronouns that allow simple subject-verb inversion in questions.
QUESTION_PRONOUNS: tuple[Subject, ...] = tuple(
    p for p in PRONOUNS if p.fr[0] in ("tu", "il", "elle", "vous", "ils", "elles")
)


def noun_subject(
    det: str, key: str, plural: bool = False, owner: str = "my"
) -> Subject:
    """A noun-phrase subject such as "the boy" or (``det="poss"``) "her brother"."""
    n = NOUNS[key]
    owner_slot = dict(OWNERS)[owner]
    return Subject(
        en_np(n, det, plural, owner),
        tuple(fr_np(n, det, plural, owner_slot)),
        5 if plural else 2,
        (n.gender, plural),
        human=key not in ("cat", "dog", "bird", "horse"),
    )


PEOPLE_BY_NAME: dict[str, Subject] = {
    s.en: s
    for s in (
        noun_subject("def", "boy"),
        noun_subject("def", "girl"),
        noun_subject("def", "man"),
        noun_subject("def", "woman"),
        noun_subject("def", "child"),
        noun_subject("def", "baby"),
        noun_subject("def", "boy", plural=True),
        noun_subject("def", "girl", plural=True),
        noun_subject("def", "woman", plural=True),
        noun_subject("def", "child", plural=True),
        noun_subject("poss", "mother"),
        noun_subject("poss", "father"),
        noun_subject("poss", "brother"),
        noun_subject("poss", "sister"),
        noun_subject("poss", "parent", plural=True),
        noun_subject("poss", "friend", plural=True),
        noun_subject("poss", "sister", owner="his"),
        noun_subject("poss", "sister", owner="her"),
        noun_subject("poss", "brother", owner="his"),
        noun_subject("poss", "brother", owner="her"),
        noun_subject("poss", "child", plural=True, owner="our"),
    )
}
PEOPLE: tuple[Subject, ...] = tuple(PEOPLE_BY_NAME.values())


def people(*names: str) -> tuple[Subject, ...]:
    """The :data:`PEOPLE` subjects with these English names."""
    return tuple(PEOPLE_BY_NAME[name] for name in names)


# People who do everyday things in the verb families.
EVERYDAY_PEOPLE = people(
    "the boy",
    "the girl",
    "the man",
    "the woman",
    "the children",
    "my mother",
    "my father",
)
ANIMALS: tuple[Subject, ...] = (
    noun_subject("def", "dog"),
    noun_subject("def", "cat"),
    noun_subject("def", "dog", plural=True),
    noun_subject("def", "cat", plural=True),
)

EN_CONTRACTED_BE = {
    "I": "I'm",
    "you": "you're",
    "he": "he's",
    "she": "she's",
    "we": "we're",
    "they": "they're",
    "it": "it's",
}


def en_be(subject: Subject) -> str:
    """English present of *to be* agreeing with ``subject``."""
    if subject.slot == 0:
        return "am"
    return "is" if subject.slot == 2 else "are"


def en_be_heads(subject: Subject, negative: bool) -> list[str]:
    """All ways to say "I am", "he isn't"... for ``subject``, with contractions."""
    be = en_be(subject)
    short = EN_CONTRACTED_BE.get(subject.en)
    if not negative:
        return [f"{subject.en} {be}"] + ([short] if short else [])
    heads = [f"{subject.en} {be} not"]
    if be != "am":
        heads.append(f"{subject.en} {be}n't")
    if short:
        heads.append(f"{short} not")
    return heads


def fr_verb(subject: Subject, form: str, negative: bool) -> list[str]:
    """Subject + conjugated verb, wrapped in ``ne ... pas`` when negative."""
    return [*subject.fr, *(["ne", form, "pas"] if negative else [form])]


def fr_question(subject: Subject, form: str) -> list[str]:
    """Inverted question head: ``Es-tu``, ``A-t-il``, ``Aiment-elles``."""
    return [inverted(form, subject.fr[0])]


@dataclass(frozen=True)
class Verb:
    """A verb in both languages.

    ``en``: base form, third-person singular, ``-ing`` form (None: no progressive).
    ``fr``: the six present-tense forms (je, tu, il, nous, vous, ils).
    """

    en: str
    en3: str
    ing: str | None
    fr: tuple[str, str, str, str, str, str]
    simple: bool = True  # whether the English simple present sounds natural
    neg_indef: bool = False  # whether "I don't <verb> a <noun>" sounds natural


def er(stem: str) -> tuple[str, str, str, str, str, str]:
    """Present tense of a regular -er verb from its stem (``aim`` -> ``aime``...)."""
    return (
        stem + "e",
        stem + "es",
        stem + "e",
        stem + "ons",
        stem + "ez",
        stem + "ent",
    )


AVOIR = ("ai", "as", "a", "avons", "avez", "ont")
ETRE = ("suis", "es", "est", "sommes", "êtes", "sont")
ALLER = ("vais", "vas", "va", "allons", "allez", "vont")
VENIR = ("viens", "viens", "vient", "venons", "venez", "viennent")
REVENIR = ("reviens", "reviens", "revient", "revenons", "revenez", "reviennent")
FAIRE = ("fais", "fais", "fait", "faisons", "faites", "font")
VOULOIR = ("veux", "veux", "veut", "voulons", "voulez", "veulent")
POUVOIR = ("peux", "peux", "peut", "pouvons", "pouvez", "peuvent")
DEVOIR = ("dois", "dois", "doit", "devons", "devez", "doivent")
HABITER = er("habit")
RENTRER = er("rentr")

GO = Verb("go", "goes", "going", ALLER)
COME = Verb("come", "comes", "coming", VENIR)
LIVE = Verb("live", "lives", "living", HABITER)
V_LIKE = Verb("like", "likes", None, er("aim"))
V_EAT = Verb(
    "eat",
    "eats",
    "eating",
    ("mange", "manges", "mange", "mangeons", "mangez", "mangent"),
)
V_DRINK = Verb(
    "drink",
    "drinks",
    "drinking",
    ("bois", "bois", "boit", "buvons", "buvez", "boivent"),
)
V_READ = Verb(
    "read", "reads", "reading", ("lis", "lis", "lit", "lisons", "lisez", "lisent")
)
V_WRITE = Verb(
    "write",
    "writes",
    "writing",
    ("écris", "écris", "écrit", "écrivons", "écrivez", "écrivent"),
)
V_SEE = Verb("see", "sees", None, ("vois", "vois", "voit", "voyons", "voyez", "voient"))
V_WANT = Verb("want", "wants", None, VOULOIR, neg_indef=True)
V_BUY = Verb(
    "buy",
    "buys",
    "buying",
    ("achète", "achètes", "achète", "achetons", "achetez", "achètent"),
)
V_TAKE = Verb(
    "take",
    "takes",
    "taking",
    ("prends", "prends", "prend", "prenons", "prenez", "prennent"),
)
V_LOOK_FOR = Verb("look for", "looks for", "looking for", er("cherch"), simple=False)
V_SPEAK = Verb("speak", "speaks", None, er("parl"))
V_OPEN = Verb(
    "open",
    "opens",
    "opening",
    ("ouvre", "ouvres", "ouvre", "ouvrons", "ouvrez", "ouvrent"),
)
V_CLOSE = Verb("close", "closes", "closing", er("ferm"))
V_HAVE = Verb("have", "has", None, AVOIR, neg_indef=True)
V_WAIT_FOR = Verb(
    "wait for",
    "waits for",
    "waiting for",
    ("attends", "attends", "attend", "attendons", "attendez", "attendent"),
)
V_LISTEN_TO = Verb("listen to", "listens to", "listening to", er("écout"))
V_WATCH = Verb("watch", "watches", "watching", er("regard"))


def objs(spec: str) -> tuple[tuple[str, str, bool], ...]:
    """Parse ``"gen:apple:pl part:bread"`` into (determiner, noun, plural) triples.

    Noun keys with spaces are written with underscores (``part:orange_juice``).
    """
    out = []
    for item in spec.split():
        det, key, *rest = item.split(":")
        out.append((det, key.replace("_", " "), rest == ["pl"]))
    return tuple(out)


# What each verb takes as a direct object (so that sentences make sense).
VERB_OBJECTS: tuple[tuple[Verb, tuple[tuple[str, str, bool], ...]], ...] = (
    (
        V_LIKE,
        objs(
            "gen:apple:pl gen:bread gen:coffee gen:tea gen:chocolate gen:cheese "
            "gen:music gen:cat:pl gen:dog:pl gen:fish gen:flower:pl "
            "gen:strawberry:pl gen:school def:sea def:film dem:song dem:city"
        ),
    ),
    (
        V_EAT,
        objs(
            "part:bread indef:apple indef:apple:pl part:rice part:cheese part:soup "
            "part:meat part:fish part:chocolate indef:egg indef:egg:pl def:cake "
            "indef:banana indef:orange indef:strawberry:pl"
        ),
    ),
    (
        V_DRINK,
        objs(
            "part:water part:milk part:coffee part:tea part:orange_juice part:wine "
            "indef:coffee indef:glass_of_water"
        ),
    ),
    (
        V_READ,
        objs(
            "indef:book def:newspaper indef:letter def:letter indef:book:pl "
            "def:menu indef:magazine dem:book"
        ),
    ),
    (
        V_WRITE,
        objs("indef:letter indef:message indef:book indef:song def:letter:pl"),
    ),
    (
        V_SEE,
        objs(
            "def:sea def:moon def:mountain:pl indef:bird def:cat def:dog "
            "def:station def:house indef:car def:church def:train poss:friend:pl"
        ),
    ),
    (
        V_WANT,
        objs(
            "indef:apple indef:coffee part:water part:tea part:bread indef:car "
            "indef:dog indef:cat def:book indef:ticket indef:glass_of_water "
            "part:cake dem:dress"
        ),
    ),
    (
        V_BUY,
        objs(
            "part:bread indef:car indef:flower:pl indef:book indef:ticket "
            "indef:apple:pl indef:newspaper part:milk indef:shoe:pl indef:dress "
            "indef:hat indef:shirt indef:umbrella"
        ),
    ),
    (
        V_TAKE,
        objs("def:bus def:train indef:taxi def:subway def:plane def:car poss:umbrella"),
    ),
    (
        V_LOOK_FOR,
        objs(
            "poss:key:pl poss:phone poss:bag def:station indef:hotel def:bank "
            "indef:restaurant poss:cat poss:friend:pl"
        ),
    ),
    (
        V_SPEAK,
        objs("bare:French bare:English bare:Spanish bare:German bare:Italian "),
    ),
    (
        V_OPEN,
        objs("def:door def:window def:box def:book def:bottle poss:bag def:shop"),
    ),
    (
        V_CLOSE,
        objs("def:door def:window def:box def:book def:shop poss:bag"),
    ),
    (
        V_HAVE,
        objs(
            "indef:cat indef:dog indef:car indef:bike indef:brother indef:sister "
            "indef:house indef:question indef:idea indef:umbrella indef:ticket "
            "indef:computer indef:child:pl"
        ),
    ),
    (
        V_WAIT_FOR,
        objs("def:bus def:train indef:taxi poss:mother poss:friend:pl"),
    ),
    (
        V_LISTEN_TO,
        objs("part:music def:radio indef:song poss:mother def:song"),
    ),
    (
        V_WATCH,
        objs("gen:TV indef:film def:film def:sea def:child:pl def:bird:pl"),
    ),
)

# Adjective forms: masc. sg, fem. sg, masc. pl, fem. pl.
Forms = tuple[str, str, str, str]


def adj(
    ms: str, fs: str | None = None, mp: str | None = None, fp: str | None = None
) -> Forms:
    """Adjective forms; by default fem. adds ``e`` and plurals add ``s``."""
    fs = fs if fs is not None else (ms if ms.endswith("e") else ms + "e")
    mp = mp if mp is not None else (ms if ms[-1] in "sx" else ms + "s")
    fp = fp if fp is not None else fs + "s"
    return (ms, fs, mp, fp)


def inv(word: str) -> Forms:
    """An invariable adjective or phrase (``en retard``, ``orange``)."""
    return (word, word, word, word)


def agree(forms: Forms, agr: Agr) -> str:
    """The adjective form agreeing with ``agr``."""
    gender, plural = agr
    return forms[(2 if plural else 0) + (1 if gender == "f" else 0)]


# (English, forms, takes "very"/"a little").
PEOPLE_ADJECTIVES: tuple[tuple[str, Forms, bool], ...] = (
    ("tired", adj("fatigué"), True),
    ("happy", adj("heureux", "heureuse"), True),
    ("sad", adj("triste"), True),
    ("sick", adj("malade"), True),
    ("ill", adj("malade"), False),
    ("ready", adj("prêt"), False),
    ("busy", adj("occupé"), True),
    ("late", inv("en retard"), False),
    ("tall", adj("grand"), True),
    ("short", adj("petit"), True),
    ("young", adj("jeune"), True),
    ("old", adj("vieux", "vieille"), True),
    ("angry", inv("en colère"), False),
    ("rich", adj("riche"), True),
    ("poor", adj("pauvre"), True),
    ("sure", adj("sûr"), False),
    ("lost", adj("perdu"), False),
    ("alone", adj("seul"), False),
    ("kind", adj("gentil", "gentille"), True),
    ("strong", adj("fort"), True),
    ("nervous", adj("nerveux", "nerveuse"), True),
    ("calm", adj("calme"), True),
    ("married", adj("marié"), False),
    ("glad", adj("content"), True),
    ("in a hurry", adj("pressé"), False),
    ("French", adj("français"), False),
    ("English", adj("anglais"), False),
    ("Canadian", adj("canadien", "canadienne"), False),
    ("German", adj("allemand"), False),
)
# Adjectives that go well with "a little" ("I am a little tired.").
A_LITTLE = frozenset({"tired", "sad", "sick", "busy", "nervous", "glad"})
ANIMAL_ADJECTIVES = ("tired", "happy", "sad", "sick", "old", "young", "calm")
BABY_ADJECTIVES = ("tired", "happy", "sad", "sick", "ill", "calm", "ready", "alone")

# Professions: no article in French ("Je suis médecin.").
PROFESSIONS: tuple[tuple[str, str, Forms], ...] = (
    ("student", "students", adj("étudiant")),
    ("doctor", "doctors", adj("médecin", "médecin")),
    ("teacher", "teachers", adj("enseignant")),
    ("nurse", "nurses", adj("infirmier", "infirmière")),
    ("cook", "cooks", adj("cuisinier", "cuisinière")),
    ("singer", "singers", adj("chanteur", "chanteuse")),
    ("lawyer", "lawyers", adj("avocat")),
)

# avoir + noun where English uses "to be": (English, French noun, gradable).
AVOIR_EXPRESSIONS: tuple[tuple[str, str, bool], ...] = (
    ("cold", "froid", True),
    ("hot", "chaud", True),
    ("warm", "chaud", False),
    ("hungry", "faim", True),
    ("thirsty", "soif", True),
    ("afraid", "peur", True),
    ("scared", "peur", False),
    ("sleepy", "sommeil", True),
    ("right", "raison", False),
    ("wrong", "tort", False),
)
DEGREES: tuple[tuple[str, str], ...] = (
    ("", ""),
    ("very", "très"),
    ("a little", "un peu"),
)

THING_ADJECTIVES: dict[str, Forms] = {
    "big": adj("grand"),
    "small": adj("petit"),
    "new": adj("neuf", "neuve"),
    "old": adj("vieux", "vieille"),
    "clean": adj("propre"),
    "dirty": adj("sale"),
    "expensive": adj("cher", "chère"),
    "hot": adj("chaud"),
    "cold": adj("froid"),
    "open": adj("ouvert"),
    "closed": adj("fermé"),
    "heavy": adj("lourd"),
    "empty": adj("vide"),
    "full": adj("plein"),
    "good": adj("bon", "bonne"),
    "fresh": adj("frais", "fraîche"),
    "beautiful": adj("beau", "belle", "beaux", "belles"),
    "interesting": adj("intéressant"),
    "long": adj("long", "longue"),
    "short": adj("court"),
    "far": inv("loin"),
    "quiet": adj("calme"),
    "broken": adj("cassé"),
    "delicious": adj("délicieux", "délicieuse"),
    "fast": adj("rapide"),
}
COLOURS: dict[str, Forms] = {
    "red": adj("rouge"),
    "blue": adj("bleu"),
    "green": adj("vert"),
    "black": adj("noir"),
    "white": adj("blanc", "blanche"),
    "yellow": adj("jaune"),
    "grey": adj("gris", "grise"),
    "pink": adj("rose"),
    "orange": inv("orange"),
    "brown": inv("marron"),
}


@dataclass(frozen=True)
class Thing:
    """A noun with the adjectives and colours that make sense for it.

    ``numbers`` lists the numbers it is used in: ``"sg pl"``, ``"sg"`` for mass
    nouns, ``"pl"`` for things that come in pairs or bunches.
    """

    key: str
    adjectives: str
    colours: str = ""
    numbers: str = "sg pl"

    @property
    def plurals(self) -> tuple[bool, ...]:
        """The ``plural`` flags to generate."""
        return tuple(n == "pl" for n in self.numbers.split())


THINGS: tuple[Thing, ...] = (
    Thing("house", "big small new old clean beautiful expensive", "white red blue"),
    Thing("car", "big small new old clean dirty expensive fast", "red blue black"),
    Thing("book", "new old interesting long short heavy", "red blue green black"),
    Thing("bag", "heavy empty full new old big small", "red black brown blue"),
    Thing("soup", "hot cold good delicious", numbers="sg"),
    Thing("coffee", "hot cold good", numbers="sg"),
    Thing("tea", "hot cold good", numbers="sg"),
    Thing("water", "cold hot clean dirty", numbers="sg"),
    Thing("bread", "fresh good hot", numbers="sg"),
    Thing("cake", "good delicious big small"),
    Thing("apple", "fresh good small big", "red green yellow"),
    Thing("flower", "beautiful fresh", "red yellow white pink blue orange"),
    Thing("shoe", "new old clean dirty expensive", "black white brown", "pl"),
    Thing("key", "heavy new old", numbers="pl"),
    Thing("shirt", "clean dirty new expensive", "white blue pink green"),
    Thing("dress", "beautiful long short new expensive", "red blue black white pink"),
    Thing("hat", "big small new old", "black grey brown red"),
    Thing("door", "open closed", "red green blue white"),
    Thing("window", "open closed clean dirty big"),
    Thing("shop", "open closed big small"),
    Thing("museum", "open closed big interesting"),
    Thing("bank", "open closed"),
    Thing("restaurant", "open closed good expensive"),
    Thing("hotel", "expensive big small clean quiet"),
    Thing("room", "big small clean dirty quiet"),
    Thing("city", "big small beautiful quiet old"),
    Thing("street", "long quiet clean dirty"),
    Thing("film", "long short good interesting"),
    Thing("song", "beautiful long short good"),
    Thing("station", "far big small", numbers="sg"),
    Thing("sea", "cold hot beautiful quiet", "blue green", "sg"),
    Thing("computer", "new old expensive broken fast", "black grey"),
    Thing("phone", "new old broken expensive", "black"),
    Thing("umbrella", "broken new", "black red blue"),
    Thing("box", "empty full heavy big small"),
    Thing("bottle", "empty full"),
    Thing("glass", "empty full clean dirty"),
    Thing("table", "clean dirty big small new old", "brown white"),
    Thing("bike", "new old fast", "blue red black"),
    Thing("cat", "", "black white grey"),
    Thing("dog", "", "black white brown"),
)


@dataclass(frozen=True)
class Place:
    """A place one can be at, go to, come from or live in.

    ``en`` is the English noun phrase without preposition ("the station",
    "school", "Paris"); ``en_at`` the preposition for being there ("at"/"in").
    ``fr`` is the French noun phrase with its article as separate words
    (``la gare``, ``le Canada``) or a bare name; ``style`` says how French
    prepositions attach: ``np`` (à/de + article: au, à la, du...), ``city``
    (à Paris, de Paris), ``fcountry`` (en France, de France), ``in`` (dans +
    article; only for being there).
    """

    en: str
    en_at: str
    fr: tuple[str, ...]
    style: str
    go: bool = True  # usable with "go to" / "come back from"
    live: bool = False  # usable with "live in"

    def fr_at(self) -> list[str]:
        """French "at/to the place": à la gare, au parc, à Paris, en France..."""
        prep = {"np": "à", "city": "à", "fcountry": "en", "in": "dans"}[self.style]
        return [prep, *self.fr]

    def fr_from(self) -> list[str]:
        """French "from the place"."""
        return ["de", *self.fr]


def place(en: str, en_at: str, fr: str, style: str = "np", **kw: bool) -> Place:
    """Build a :class:`Place` from a space-separated French phrase."""
    return Place(en, en_at, tuple(fr.split()), style, **kw)


PLACES: tuple[Place, ...] = (
    place("school", "at", "la école"),
    place("work", "at", "le travail"),
    place("the office", "at", "le bureau"),
    place("the station", "at", "la gare"),
    place("the park", "at", "le parc"),
    place("the beach", "at", "la plage"),
    place("the market", "at", "le marché"),
    place("the hospital", "at", "le hôpital"),
    place("the airport", "at", "le aéroport"),
    place("the bank", "at", "la banque"),
    place("the library", "at", "la bibliothèque"),
    place("the cinema", "at", "le cinéma"),
    place("the restaurant", "at", "le restaurant"),
    place("the museum", "at", "le musée"),
    place("the pool", "at", "la piscine"),
    place("the hotel", "at", "le hôtel"),
    place("the bakery", "at", "la boulangerie"),
    place("church", "at", "la église"),
    place("bed", "in", "le lit", go=False),
    place("the kitchen", "in", "la cuisine", "in", go=False),
    place("the garden", "in", "le jardin", "in", go=False),
    place("the car", "in", "la voiture", "in", go=False),
    place("Paris", "in", "Paris", "city", live=True),
    place("London", "in", "Londres", "city", live=True),
    place("Rome", "in", "Rome", "city", live=True),
    place("France", "in", "France", "fcountry", live=True),
    place("Italy", "in", "Italie", "fcountry", live=True),
    place("Spain", "in", "Espagne", "fcountry", live=True),
    place("Germany", "in", "Allemagne", "fcountry", live=True),
    place("Canada", "in", "le Canada", live=True),
    place("Japan", "in", "le Japon", live=True),
    place("the United States", "in", "les États-Unis", live=True),
)

# --------------------------------------------------------------------------------------
# Sentence families. Each yields (english, french) pairs.
# --------------------------------------------------------------------------------------


def avoir_expressions() -> Iterator[Pair]:
    """Avoir + noun where English uses *be*: "I am cold." -> "J'ai froid."."""
    subjects = PRONOUNS + PEOPLE + ANIMALS
    for subject in subjects:
        for en_word, fr_word, gradable in AVOIR_EXPRESSIONS:
            if not subject.human and fr_word in ("raison", "tort", "peur"):
                continue
            for negative in (False, True):
                degrees = DEGREES if gradable else DEGREES[:1]
                for en_deg, fr_deg in degrees:
                    if negative and en_deg == "a little":
                        continue
                    fr = finish_fr(
                        [
                            *fr_verb(subject, AVOIR[subject.slot], negative),
                            fr_deg,
                            fr_word,
                        ]
                    )
                    for head in en_be_heads(subject, negative):
                        yield finish_en([head, en_deg, en_word]), fr
    for subject in QUESTION_PRONOUNS:
        be = en_be(subject)
        for en_word, fr_word, gradable in AVOIR_EXPRESSIONS:
            for en_deg, fr_deg in DEGREES[:2] if gradable else DEGREES[:1]:
                yield (
                    finish_en([be, subject.en, en_deg, en_word], "?"),
                    finish_fr(
                        [*fr_question(subject, AVOIR[subject.slot]), fr_deg, fr_word],
                        "?",
                    ),
                )


def etre_people() -> Iterator[Pair]:
    """Être + adjective or profession: "She is tired." -> "Elle est fatiguée."."""
    for subject in PRONOUNS + PEOPLE + ANIMALS:
        young = any(w in subject.en for w in ("baby", "child", "boy", "girl"))
        for en_word, forms, gradable in PEOPLE_ADJECTIVES:
            if not subject.human and en_word not in ANIMAL_ADJECTIVES:
                continue
            if "baby" in subject.en and en_word not in BABY_ADJECTIVES:
                continue
            if young and en_word in ("married", "rich", "poor"):
                continue
            for negative in (False, True):
                for en_deg, fr_deg in DEGREES if gradable else DEGREES[:1]:
                    if en_deg == "a little" and (negative or en_word not in A_LITTLE):
                        continue
                    fr = finish_fr(
                        [
                            *fr_verb(subject, ETRE[subject.slot], negative),
                            fr_deg,
                            agree(forms, subject.agr),
                        ]
                    )
                    for head in en_be_heads(subject, negative):
                        yield finish_en([head, en_deg, en_word]), fr
        if not subject.human or young:
            continue
        for en_sg, en_pl, forms in PROFESSIONS:
            plural = subject.agr[1]
            en_word = en_pl if plural else f"{an(en_sg)} {en_sg}"
            for negative in (False, True):
                fr = finish_fr(
                    [
                        *fr_verb(subject, ETRE[subject.slot], negative),
                        agree(forms, subject.agr),
                    ]
                )
                for head in en_be_heads(subject, negative):
                    yield finish_en([head, en_word]), fr
    for subject in QUESTION_PRONOUNS:
        be = en_be(subject)
        for en_word, forms, _ in PEOPLE_ADJECTIVES:
            yield (
                finish_en([be, subject.en, en_word], "?"),
                finish_fr(
                    [
                        *fr_question(subject, ETRE[subject.slot]),
                        agree(forms, subject.agr),
                    ],
                    "?",
                ),
            )


# Things nobody says "my ..." about.
NOT_OWNED = frozenset(
    {"sea", "museum", "bank", "station", "street", "city", "shop", "restaurant"}
    | {"film", "song"}
)


def thing_subjects(key: str, plurals: tuple[bool, ...]) -> Iterator[Subject]:
    """Subjects built on a thing: "the car", "this car", "my car", "these cars"..."""
    n = NOUNS[key]
    for plural in plurals:
        for det in ("def", "dem"):
            yield Subject(
                en_np(n, det, plural),
                tuple(fr_np(n, det, plural)),
                5 if plural else 2,
                (n.gender, plural),
                human=False,
            )
        if key in NOT_OWNED:
            continue
        for owner_en, owner in OWNERS:
            if odd_owner(key, plural, owner_en):
                continue
            yield Subject(
                en_np(n, "poss", plural, owner_en),
                tuple(fr_np(n, "poss", plural, owner)),
                5 if plural else 2,
                (n.gender, plural),
                human=False,
            )


def etre_things() -> Iterator[Pair]:
    """Things and their qualities: "The soup is hot." -> "La soupe est chaude."."""
    for thing in THINGS:
        key = thing.key
        words = [(a, THING_ADJECTIVES[a]) for a in thing.adjectives.split()]
        words += [(c, COLOURS[c]) for c in thing.colours.split()]
        if key in ("cat", "dog"):
            subjects: Iterable[Subject] = [a for a in ANIMALS if key in a.en]
        else:
            subjects = thing_subjects(key, thing.plurals)
        for subject in subjects:
            for en_word, forms in words:
                for negative in (False, True):
                    fr = finish_fr(
                        [
                            *fr_verb(subject, ETRE[subject.slot], negative),
                            agree(forms, subject.agr),
                        ]
                    )
                    for head in en_be_heads(subject, negative):
                        yield finish_en([head, en_word]), fr
                if subject.en.startswith("the "):
                    yield (
                        finish_en([en_be(subject), subject.en, en_word], "?"),
                        finish_fr(
                            [
                                "est-ce",
                                "que",
                                *subject.fr,
                                ETRE[subject.slot],
                                agree(forms, subject.agr),
                            ],
                            "?",
                        ),
                    )


def colour_objects() -> Iterator[Pair]:
    """Colour after the noun: "I have a red car." -> "J'ai une voiture rouge."."""
    verbs = (V_HAVE, V_WANT, V_BUY, V_SEE)
    for thing in THINGS:
        key, colours = thing.key, thing.colours
        if not colours or key in ("door", "sea"):
            continue
        n = NOUNS[key]
        for subject in PRONOUNS:
            for verb in verbs:
                if key == "house" and verb is V_BUY:
                    continue
                for plural in thing.plurals:
                    for det in ("indef", "def"):
                        for colour in colours.split():
                            forms = COLOURS[colour]
                            en_verb = verb.en3 if subject.slot == 2 else verb.en
                            en_obj = colour_np_en(n, det, plural, colour)
                            yield (
                                finish_en([subject.en, en_verb, en_obj]),
                                finish_fr(
                                    [
                                        *subject.fr,
                                        verb.fr[subject.slot],
                                        *fr_np(n, det, plural),
                                        agree(forms, (n.gender, plural)),
                                    ]
                                ),
                            )


def colour_np_en(n: Noun, det: str, plural: bool, colour: str) -> str:
    """English noun phrase with a colour before the noun ("a red car")."""
    word = n.en_pl if plural else n.en
    if det == "def":
        return f"the {colour} {word}"
    return f"{colour} {word}" if plural else f"{an(colour)} {colour} {word}"


def en_simple(subject: Subject, verb: Verb, negative: bool) -> list[str]:
    """English simple present heads: "she likes", "she does not like"..."""
    if not negative:
        return [f"{subject.en} {verb.en3 if subject.slot == 2 else verb.en}"]
    do = "does" if subject.slot == 2 else "do"
    return [f"{subject.en} {do} not {verb.en}", f"{subject.en} {do}n't {verb.en}"]


def verb_objects() -> Iterator[Pair]:
    """Verbs with direct objects: "I like apples." -> "J'aime les pommes."."""
    subjects = PRONOUNS + EVERYDAY_PEOPLE
    for verb, objects in VERB_OBJECTS:
        for subject in subjects:
            form = verb.fr[subject.slot]
            for det, key, plural in objects:
                if det == "poss" and not subject.is_pronoun:
                    continue
                n = NOUNS[key]
                en_obj = en_np(n, det, plural, subject.en_poss)
                odd_negation = det == "indef" and not plural and not verb.neg_indef
                for negative in (False, True) if not odd_negation else (False,):
                    o_det = negated_det(det) if negative else det
                    fr = finish_fr(
                        [
                            *fr_verb(subject, form, negative),
                            *fr_np(n, o_det, plural, subject.slot),
                        ]
                    )
                    heads = en_simple(subject, verb, negative) if verb.simple else []
                    if verb.ing:
                        heads += [
                            f"{h} {verb.ing}" for h in en_be_heads(subject, negative)
                        ]
                    for head in heads:
                        yield finish_en([head, en_obj]), fr
                if subject not in QUESTION_PRONOUNS:
                    continue
                fr_q = finish_fr(
                    [*fr_question(subject, form), *fr_np(n, det, plural, subject.slot)],
                    "?",
                )
                if verb.simple:
                    do = "does" if subject.slot == 2 else "do"
                    yield finish_en([do, subject.en, verb.en, en_obj], "?"), fr_q
                if verb.ing:
                    yield (
                        finish_en([en_be(subject), subject.en, verb.ing, en_obj], "?"),
                        fr_q,
                    )


# Verbs without object, with the adverbials (keys of ADVERBIALS, "|"-separated)
# that go with their simple present.
Adverbial = tuple[str, str]
ADVERBIALS: dict[str, Adverbial] = {
    "": ("", ""),
    "well": ("well", "bien"),
    "a lot": ("a lot", "beaucoup"),
    "every day": ("every day", "tous les jours"),
    "now": ("now", "maintenant"),
    "tonight": ("tonight", "ce soir"),
    "today": ("today", "aujourd'hui"),
    "at home": ("at home", "à la maison"),
    "in the garden": ("in the garden", "dans le jardin"),
}
INTRANSITIVES: tuple[tuple[Verb, str], ...] = (
    (
        Verb("work", "works", "working", er("travaill")),
        "|a lot|every day|at home|in the garden",
    ),
    (Verb("sing", "sings", "singing", er("chant")), "|well|every day"),
    (Verb("dance", "dances", "dancing", er("dans")), "|well|every day"),
    (Verb("play", "plays", "playing", er("jou")), "|every day|in the garden"),
    (
        Verb(
            "swim",
            "swims",
            "swimming",
            ("nage", "nages", "nage", "nageons", "nagez", "nagent"),
        ),
        "|well|every day",
    ),
    (
        Verb(
            "sleep",
            "sleeps",
            "sleeping",
            ("dors", "dors", "dort", "dormons", "dormez", "dorment"),
        ),
        "|well|a lot|at home",
    ),
    (
        Verb(
            "run",
            "runs",
            "running",
            ("cours", "cours", "court", "courons", "courez", "courent"),
        ),
        "|every day|in the garden",
    ),
    (Verb("cook", "cooks", "cooking", er("cuisin")), "|well|every day|at home"),
    (Verb("study", "studies", "studying", er("étudi")), "|a lot|every day|at home"),
    (V_READ, "|a lot|every day|in the garden"),
    (V_EAT, "|well|a lot|at home"),
)
PROGRESSIVE_ADVERBIALS = ("", "now", "tonight", "today", "at home", "in the garden")


def intransitives() -> Iterator[Pair]:
    """Verbs without object: "She sings well." -> "Elle chante bien."."""
    subjects = PRONOUNS + EVERYDAY_PEOPLE
    for verb, adverbials in INTRANSITIVES:
        simple_advs = adverbials.split("|")
        prog_advs = [
            a
            for a in PROGRESSIVE_ADVERBIALS
            if a in ("", "now", "tonight", "today") or a in simple_advs
        ]
        for subject in subjects:
            form = verb.fr[subject.slot]
            for negative in (False, True):
                for adv in simple_advs:
                    en_adv, fr_adv = ADVERBIALS[adv]
                    if negative and adv in ("well", "a lot"):
                        continue
                    fr = finish_fr([*fr_verb(subject, form, negative), fr_adv])
                    for head in en_simple(subject, verb, negative):
                        yield finish_en([head, en_adv]), fr
                for adv in prog_advs:
                    en_adv, fr_adv = ADVERBIALS[adv]
                    fr = finish_fr([*fr_verb(subject, form, negative), fr_adv])
                    for head in en_be_heads(subject, negative):
                        yield finish_en([head, verb.ing or "", en_adv]), fr
            if subject in QUESTION_PRONOUNS:
                for adv in ("", "now", "at home"):
                    if adv not in prog_advs:
                        continue
                    en_adv, fr_adv = ADVERBIALS[adv]
                    yield (
                        finish_en(
                            [en_be(subject), subject.en, verb.ing or "", en_adv], "?"
                        ),
                        finish_fr([*fr_question(subject, form), fr_adv], "?"),
                    )


# Infinitive phrases after want to / have to / can / like: (English, French words).
INFINITIVES: tuple[tuple[str, str, str], ...] = (
    # (English, French, French after a negation when it differs)
    ("sleep", "dormir", ""),
    ("eat", "manger", ""),
    ("leave", "partir", ""),
    ("work", "travailler", ""),
    ("read", "lire", ""),
    ("play", "jouer", ""),
    ("swim", "nager", ""),
    ("dance", "danser", ""),
    ("sing", "chanter", ""),
    ("go home", "rentrer à la maison", ""),
    ("go out", "sortir", ""),
    ("help", "aider", ""),
    ("wait", "attendre", ""),
    ("come", "venir", ""),
    ("learn French", "apprendre le français", ""),
    ("speak French", "parler français", ""),
    ("go to the beach", "aller à la plage", ""),
    ("see the sea", "voir la mer", ""),
    ("buy a car", "acheter une voiture", "acheter de voiture"),
    ("drink water", "boire de l'eau", "boire d'eau"),
    ("eat meat", "manger de la viande", "manger de viande"),
)
LIKE_GERUNDS: tuple[tuple[str, str, str], ...] = (
    ("swim", "swimming", "nager"),
    ("read", "reading", "lire"),
    ("dance", "dancing", "danser"),
    ("sing", "singing", "chanter"),
    ("cook", "cooking", "cuisiner"),
    ("run", "running", "courir"),
    ("work", "working", "travailler"),
    ("play", "playing", "jouer"),
    ("walk", "walking", "marcher"),
    ("travel", "travelling", "voyager"),
)
CAN_INFINITIVES = frozenset(
    {"sleep", "eat", "leave", "help", "wait", "come", "go out", "go home", "swim"}
)


def infinitives() -> Iterator[Pair]:
    """Verb + infinitive: "I want to sleep." -> "Je veux dormir."."""
    subjects = PRONOUNS + EVERYDAY_PEOPLE
    for subject in subjects:
        third = subject.slot == 2
        s = subject.en
        do, has = ("does", "has") if third else ("do", "have")
        for en_inf, fr_inf, fr_inf_neg in INFINITIVES:
            fr_words = fr_inf.split()
            fr_neg_words = (fr_inf_neg or fr_inf).split()
            want = VOULOIR[subject.slot]
            must = DEVOIR[subject.slot]
            yield (
                finish_en([s, "wants" if third else "want", "to", en_inf]),
                finish_fr([*fr_verb(subject, want, False), *fr_words]),
            )
            for neg in (f"{do} not", f"{do}n't"):
                yield (
                    finish_en([s, neg, "want to", en_inf]),
                    finish_fr([*fr_verb(subject, want, True), *fr_neg_words]),
                )
            for head in (f"{s} {has} to", f"{s} must"):
                yield (
                    finish_en([head, en_inf]),
                    finish_fr([*fr_verb(subject, must, False), *fr_words]),
                )
            for head in (f"{s} must not", f"{s} mustn't"):
                yield (
                    finish_en([head, en_inf]),
                    finish_fr([*fr_verb(subject, must, True), *fr_neg_words]),
                )
            if en_inf in CAN_INFINITIVES:
                can = POUVOIR[subject.slot]
                yield (
                    finish_en([s, "can", en_inf]),
                    finish_fr([*fr_verb(subject, can, False), *fr_words]),
                )
                for head in (f"{s} cannot", f"{s} can't"):
                    yield (
                        finish_en([head, en_inf]),
                        finish_fr([*fr_verb(subject, can, True), *fr_neg_words]),
                    )
            if subject in QUESTION_PRONOUNS:
                for en_head, fr_form in (
                    (f"{do} {s} want to", want),
                    (f"{do} {s} have to", must),
                ):
                    yield (
                        finish_en([en_head, en_inf], "?"),
                        finish_fr([*fr_question(subject, fr_form), *fr_words], "?"),
                    )
                if en_inf in CAN_INFINITIVES:
                    yield (
                        finish_en(["can", s, en_inf], "?"),
                        finish_fr(
                            [*fr_question(subject, POUVOIR[subject.slot]), *fr_words],
                            "?",
                        ),
                    )
        like = V_LIKE.fr[subject.slot]
        for en_base, en_ing, fr_inf in LIKE_GERUNDS:
            for en_obj in (f"to {en_base}", en_ing):
                yield (
                    finish_en([s, "likes" if third else "like", en_obj]),
                    finish_fr([*fr_verb(subject, like, False), fr_inf]),
                )
                yield (
                    finish_en([s, f"{do}n't like", en_obj]),
                    finish_fr([*fr_verb(subject, like, True), fr_inf]),
                )
                if subject in QUESTION_PRONOUNS:
                    yield (
                        finish_en([do, s, "like", en_obj], "?"),
                        finish_fr([*fr_question(subject, like), fr_inf], "?"),
                    )


def places() -> Iterator[Pair]:
    """Being at, going to, coming back from and living in places."""
    subjects = PRONOUNS + PEOPLE
    for subject in subjects:
        slot = subject.slot
        for p in PLACES:
            en_at = f"{p.en_at} {p.en}"
            for negative in (False, True):
                fr = finish_fr([*fr_verb(subject, ETRE[slot], negative), *p.fr_at()])
                for head in en_be_heads(subject, negative):
                    yield finish_en([head, en_at]), fr
                if not p.go:
                    continue
                fr = finish_fr([*fr_verb(subject, ALLER[slot], negative), *p.fr_at()])
                for head in en_be_heads(subject, negative):
                    yield finish_en([head, "going to", p.en]), fr
                if not negative:
                    yield finish_en(en_simple(subject, GO, False) + ["to", p.en]), fr
                fr = finish_fr(
                    [*fr_verb(subject, REVENIR[slot], negative), *p.fr_from()]
                )
                for head in en_be_heads(subject, negative):
                    yield finish_en([head, "coming back from", p.en]), fr
                if p.live:
                    fr = finish_fr(
                        [*fr_verb(subject, VENIR[slot], negative), *p.fr_from()]
                    )
                    for head in en_simple(subject, COME, negative):
                        yield finish_en([head, "from", p.en]), fr
                    fr = finish_fr(
                        [*fr_verb(subject, HABITER[slot], negative), *p.fr_at()]
                    )
                    for head in en_simple(subject, LIVE, negative):
                        yield finish_en([head, "in", p.en]), fr
        # "at home" / "going home"
        for negative in (False, True):
            fr = finish_fr(
                [*fr_verb(subject, ETRE[slot], negative), "à", "la", "maison"]
            )
            for head in en_be_heads(subject, negative):
                yield finish_en([head, "at home"]), fr
            fr = finish_fr(
                [*fr_verb(subject, RENTRER[slot], negative), "à", "la", "maison"]
            )
            for head in en_be_heads(subject, negative):
                yield finish_en([head, "going home"]), fr
    for subject in QUESTION_PRONOUNS:
        slot = subject.slot
        be = en_be(subject)
        do = "does" if slot == 2 else "do"
        for p in PLACES:
            yield (
                finish_en([be, subject.en, p.en_at, p.en], "?"),
                finish_fr([inverted(ETRE[slot], subject.fr[0]), *p.fr_at()], "?"),
            )
            if p.go:
                yield (
                    finish_en([be, subject.en, "going to", p.en], "?"),
                    finish_fr([inverted(ALLER[slot], subject.fr[0]), *p.fr_at()], "?"),
                )
            if p.live:
                yield (
                    finish_en([do, subject.en, "live in", p.en], "?"),
                    finish_fr(
                        [inverted(HABITER[slot], subject.fr[0]), *p.fr_at()], "?"
                    ),
                )
        yield (
            finish_en([be, subject.en, "at home"], "?"),
            finish_fr([inverted(ETRE[slot], subject.fr[0]), "à la maison"], "?"),
        )


# Things and people one asks about: (noun key, plural, determiners).
WHERE_IS: tuple[tuple[str, bool, str], ...] = (
    ("key", True, "def poss"),
    ("phone", False, "def poss"),
    ("bag", False, "def poss"),
    ("car", False, "def poss"),
    ("book", False, "def poss"),
    ("umbrella", False, "def poss"),
    ("ticket", False, "def poss"),
    ("ticket", True, "def poss"),
    ("shoe", True, "def poss"),
    ("cat", False, "def poss"),
    ("dog", False, "def poss"),
    ("computer", False, "def poss"),
    ("watch", False, "def poss"),
    ("pen", False, "def poss"),
    ("hat", False, "def poss"),
    ("seat", False, "poss"),
    ("room", False, "def poss"),
    ("bike", False, "def poss"),
    ("child", True, "def poss"),
    ("parent", True, "poss"),
    ("friend", True, "poss"),
    ("mother", False, "poss"),
    ("father", False, "poss"),
    ("brother", False, "poss"),
    ("sister", False, "poss"),
    ("school", False, "poss"),
    ("apple", True, "def"),
    ("bread", False, "def"),
    ("menu", False, "def"),
)


def where_questions() -> Iterator[Pair]:
    """Wh-questions: "Where is the station?" -> "Où est la gare ?"."""
    for key in (
        "station",
        "bank",
        "hotel",
        "school",
        "museum",
        "hospital",
        "airport",
        "library",
        "market",
        "beach",
        "pool",
        "bakery",
        "church",
        "park",
        "restaurant",
        "cinema",
        "kitchen",
        "garden",
        "street",
    ):
        n = NOUNS[key]
        yield (
            finish_en(["where is", en_np(n, "def")], "?"),
            finish_fr(["où", "est", *fr_np(n, "def")], "?"),
        )
    for key, plural, dets in WHERE_IS:
        n = NOUNS[key]
        be, fr_be = ("are", "sont") if plural else ("is", "est")
        for det in dets.split():
            owners = OWNERS if det == "poss" else (("the", 0),)
            for owner_en, owner in owners:
                if odd_owner(key, plural, owner_en):
                    continue
                yield (
                    finish_en(["where", be, en_np(n, det, plural, owner_en)], "?"),
                    finish_fr(["où", fr_be, *fr_np(n, det, plural, owner)], "?"),
                )
    for subject in QUESTION_PRONOUNS:
        slot = subject.slot
        be = en_be(subject)
        do = "does" if slot == 2 else "do"
        p = subject.fr[0]
        s = subject.en
        for en, fr in (
            ([f"where {be}", s], ["où", inverted(ETRE[slot], p)]),
            ([f"where {be}", s, "going"], ["où", inverted(ALLER[slot], p)]),
            ([f"where {do}", s, "live"], ["où", inverted(HABITER[slot], p)]),
            ([f"where {do}", s, "work"], ["où", inverted(er("travaill")[slot], p)]),
            ([f"where {be}", s, "from"], ["de", "où", inverted(VENIR[slot], p)]),
            ([f"where {do}", s, "come from"], ["de", "où", inverted(VENIR[slot], p)]),
            ([f"what {be}", s, "doing"], ["que", inverted(FAIRE[slot], p)]),
            ([f"what {do}", s, "want"], ["que", inverted(VOULOIR[slot], p)]),
            ([f"what {be}", s, "eating"], ["que", inverted(V_EAT.fr[slot], p)]),
            ([f"what {be}", s, "drinking"], ["que", inverted(V_DRINK.fr[slot], p)]),
            ([f"what {be}", s, "reading"], ["que", inverted(V_READ.fr[slot], p)]),
            (
                [f"what {be}", s, "looking for"],
                ["que", inverted(V_LOOK_FOR.fr[slot], p)],
            ),
            ([f"what {be}", s, "writing"], ["que", inverted(V_WRITE.fr[slot], p)]),
            ([f"what {be}", s, "buying"], ["que", inverted(V_BUY.fr[slot], p)]),
            ([f"what {do}", s, "see"], ["que", inverted(V_SEE.fr[slot], p)]),
            ([f"how old {be}", s], ["quel", "âge", inverted(AVOIR[slot], p)]),
        ):
            yield finish_en(en, "?"), finish_fr(fr, "?")


# Things one can point at and say whose they are: (noun key, plural).
OWNABLE: tuple[tuple[str, bool], ...] = (
    ("book", False),
    ("book", True),
    ("car", False),
    ("house", False),
    ("computer", False),
    ("school", False),
    ("room", False),
    ("cat", False),
    ("dog", False),
    ("idea", False),
    ("ticket", False),
    ("key", True),
    ("brother", False),
    ("sister", False),
    ("mother", False),
    ("father", False),
    ("friend", False),
    ("friend", True),
    ("parent", True),
    ("child", True),
    ("bag", False),
    ("phone", False),
    ("umbrella", False),
    ("pen", False),
    ("bike", False),
    ("shoe", True),
    ("dress", False),
    ("hat", False),
    ("watch", False),
    ("seat", False),
)


def possessives() -> Iterator[Pair]:
    """Whose is it: "This is my book." -> "C'est mon livre."."""
    owners = (*OWNERS, ("your", 1), ("your", 4))
    for key, plural in OWNABLE:
        n = NOUNS[key]
        for owner_en, owner in owners:
            if odd_owner(key, plural, owner_en):
                continue
            en_obj = en_np(n, "poss", plural, owner_en)
            fr_obj = fr_np(n, "poss", plural, owner)
            if plural:
                heads = [
                    ("these are", False),
                    ("those are", False),
                    ("these are not", True),
                    ("they aren't", True),
                ]
                for head, negative in heads:
                    yield (
                        finish_en([head, en_obj]),
                        finish_fr(
                            [
                                "ce",
                                *(["ne", "sont", "pas"] if negative else ["sont"]),
                                *fr_obj,
                            ]
                        ),
                    )
                continue
            heads = [
                ("this is", False),
                ("that is", False),
                ("that's", False),
                ("it is", False),
                ("it's", False),
                ("this is not", True),
                ("it isn't", True),
                ("it's not", True),
            ]
            for head, negative in heads:
                yield (
                    finish_en([head, en_obj]),
                    finish_fr(
                        [
                            "ce",
                            *(["ne", "est", "pas"] if negative else ["est"]),
                            *fr_obj,
                        ]
                    ),
                )
            if owner in (1, 4):
                yield (
                    finish_en(["is this", en_obj], "?"),
                    finish_fr(["est-ce", *fr_obj], "?"),
                )
        if not plural and key not in ("mother", "father", "brother", "sister"):
            for head in ("this is", "it is", "it's"):
                yield (
                    finish_en([head, en_np(n, "indef")]),
                    finish_fr(["ce", "est", *fr_np(n, "indef")]),
                )


NUMBERS: tuple[tuple[str, str], ...] = (
    ("two", "deux"),
    ("three", "trois"),
    ("four", "quatre"),
    ("five", "cinq"),
    ("six", "six"),
    ("seven", "sept"),
    ("eight", "huit"),
    ("nine", "neuf"),
    ("ten", "dix"),
)
AGES: tuple[tuple[str, str], ...] = (
    *NUMBERS,
    ("twelve", "douze"),
    ("fifteen", "quinze"),
    ("eighteen", "dix-huit"),
    ("twenty", "vingt"),
    ("twenty-five", "vingt-cinq"),
    ("thirty", "trente"),
    ("forty", "quarante"),
    ("fifty", "cinquante"),
    ("sixty", "soixante"),
)
# Ages said of adults only ("My father is fifty."), and of children only.
ADULT_AGES = frozenset(
    {"vingt", "vingt-cinq", "trente", "quarante", "cinquante", "soixante"}
)
HOURS: tuple[tuple[str, str], ...] = (("one", "une"), *NUMBERS, ("eleven", "onze"))
# Countable things and where they can be: noun key -> containers.
CONTAINED: dict[str, tuple[str, ...]] = {
    "cat": ("garden", "house", "kitchen"),
    "dog": ("garden", "park", "car"),
    "bird": ("garden", "park"),
    "child": ("park", "garden", "house", "pool"),
    "apple": ("bag", "box", "kitchen"),
    "book": ("bag", "box", "room"),
    "egg": ("box", "kitchen"),
    "chair": ("room", "kitchen", "garden"),
    "key": ("bag", "box", "car"),
    "flower": ("garden", "room"),
    "bottle": ("kitchen", "bag", "box"),
    "horse": ("park",),
}
HAVE_COUNTABLE = tuple(
    "cat dog brother sister child book ticket bird horse friend key apple egg "
    "question".split()
)


def numbers() -> Iterator[Pair]:
    """Counting, "there is/are", ages and the time."""
    family = people(
        "my mother", "my father", "my brother", "my sister", "my parents", "my friends"
    )
    for subject in PRONOUNS + family:
        for key in HAVE_COUNTABLE:
            n = NOUNS[key]
            for en_num, fr_num in NUMBERS:
                en_verb = "has" if subject.slot == 2 else "have"
                yield (
                    finish_en([subject.en, en_verb, en_num, n.en_pl]),
                    finish_fr([*subject.fr, AVOIR[subject.slot], fr_num, n.fr_pl]),
                )
    for key, containers in CONTAINED.items():
        n = NOUNS[key]
        for c_key in containers:
            c = NOUNS[c_key]
            en_in, fr_in = f"in {en_np(c, 'def')}", ["dans", *fr_np(c, "def")]
            for en_num, fr_num in NUMBERS:
                yield (
                    finish_en(["there are", en_num, n.en_pl, en_in]),
                    finish_fr(["il", "y", "a", fr_num, n.fr_pl, *fr_in]),
                )
            for head in ("there is", "there's"):
                yield (
                    finish_en([head, en_np(n, "indef"), en_in]),
                    finish_fr(["il", "y", "a", *fr_np(n, "indef"), *fr_in]),
                )
            yield (
                finish_en(["there are", n.en_pl, en_in]),
                finish_fr(["il", "y", "a", *fr_np(n, "indef", True), *fr_in]),
            )
            for head in ("there is no", f"there isn't {an(n.en)}"):
                yield (
                    finish_en([head, n.en, en_in]),
                    finish_fr(["il", "ne", "y", "a", "pas", "de", n.fr, *fr_in]),
                )
            yield (
                finish_en([f"is there {an(n.en)}", n.en, en_in], "?"),
                finish_fr(
                    ["est-ce", "que", "il", "y", "a", *fr_np(n, "indef"), *fr_in], "?"
                ),
            )
    kids = people("the boy", "the girl", "the child")
    adults = people("my mother", "my father")
    siblings = people("my brother", "my sister", "his sister", "her brother")
    age_subjects = [p for p in PRONOUNS if not p.agr[1]] + [*siblings, *kids, *adults]
    for subject in age_subjects:
        for en_num, fr_num in AGES:
            is_adult = fr_num in ADULT_AGES
            if (subject in kids and is_adult) or (subject in adults and not is_adult):
                continue
            fr = finish_fr([*subject.fr, AVOIR[subject.slot], fr_num, "ans"])
            for head in en_be_heads(subject, False):
                yield finish_en([head, en_num, "years old"]), fr
                yield finish_en([head, en_num]), fr
    for en_num, fr_num in HOURS:
        en_oclock = f"{en_num} o'clock"
        fr_time = ["il", "est", fr_num, "heure" if fr_num == "une" else "heures"]
        for head in ("it is", "it's"):
            yield finish_en([head, en_oclock]), finish_fr(fr_time)


# Weather: (English predicate, French affirmative words, French negative words).
WEATHER: tuple[tuple[str, str, str], ...] = (
    ("cold", "il fait froid", "il ne fait pas froid"),
    ("very cold", "il fait très froid", "il ne fait pas très froid"),
    ("hot", "il fait chaud", "il ne fait pas chaud"),
    ("very hot", "il fait très chaud", "il ne fait pas très chaud"),
    ("warm", "il fait chaud", "il ne fait pas chaud"),
    ("sunny", "il y a du soleil", "il ne y a pas de soleil"),
    ("windy", "il y a du vent", "il ne y a pas de vent"),
    ("foggy", "il y a du brouillard", "il ne y a pas de brouillard"),
    ("raining", "il pleut", "il ne pleut pas"),
    ("snowing", "il neige", "il ne neige pas"),
)
WHEN: tuple[tuple[str, str], ...] = (
    ("", ""),
    ("today", "aujourd'hui"),
    ("tonight", "ce soir"),
    ("this morning", "ce matin"),
    ("here", "ici"),
    ("in Paris", "à Paris"),
    ("in London", "à Londres"),
)

SEASONAL: tuple[tuple[str, str], ...] = (
    ("it is cold in winter", "il fait froid en hiver"),
    ("it is very cold in winter", "il fait très froid en hiver"),
    ("it snows in winter", "il neige en hiver"),
    ("it is hot in summer", "il fait chaud en été"),
    ("it is very hot in summer", "il fait très chaud en été"),
    ("it rains a lot in autumn", "il pleut beaucoup en automne"),
    ("it rains a lot here", "il pleut beaucoup ici"),
    ("it snows a lot here", "il neige beaucoup ici"),
    ("it is never cold here", "il ne fait jamais froid ici"),
    ("it never snows here", "il ne neige jamais ici"),
)


def weather() -> Iterator[Pair]:
    """Weather: "It is cold." -> "Il fait froid."; rain, snow, sun, wind."""
    for en_pred, fr_aff, fr_neg in WEATHER:
        for en_when, fr_when in WHEN:
            for head, fr_words in (
                ("it is", fr_aff),
                ("it's", fr_aff),
                ("it is not", fr_neg),
                ("it isn't", fr_neg),
                ("it's not", fr_neg),
            ):
                yield (
                    finish_en([head, en_pred, en_when]),
                    finish_fr([*fr_words.split(), fr_when]),
                )
            yield (
                finish_en(["is it", en_pred, en_when], "?"),
                finish_fr(["est-ce", "que", *fr_aff.split(), fr_when], "?"),
            )
    for en, fr in SEASONAL:
        yield finish_en(en.split()), finish_fr(fr.split())
    for en, fr in (
        ("the weather is nice", "il fait beau"),
        ("the weather is good", "il fait beau"),
        ("the weather is bad", "il fait mauvais"),
        ("the weather is not nice", "il ne fait pas beau"),
        ("the weather isn't nice", "il ne fait pas beau"),
        ("it is nice weather", "il fait beau"),
        ("it's nice weather", "il fait beau"),
        ("it is bad weather", "il fait mauvais"),
    ):
        for en_when, fr_when in WHEN[:3]:
            yield finish_en([en, en_when]), finish_fr([*fr.split(), fr_when])


# Imperatives: (English verb, tu form, vous form, objects).
IMPERATIVES: tuple[tuple[str, str, str, tuple[tuple[str, str, bool], ...]], ...] = (
    ("open", "ouvre", "ouvrez", objs("def:door def:window def:box def:bottle")),
    ("close", "ferme", "fermez", objs("def:door def:window def:box def:book")),
    ("take", "prends", "prenez", objs("def:bus def:train indef:taxi poss:umbrella")),
    ("eat", "mange", "mangez", objs("poss:soup poss:bread indef:apple def:cake")),
    ("drink", "bois", "buvez", objs("part:water poss:milk poss:tea poss:coffee")),
    ("read", "lis", "lisez", objs("dem:book def:letter def:menu def:newspaper")),
    ("buy", "achète", "achetez", objs("part:bread part:milk indef:ticket")),
    ("wait for", "attends", "attendez", objs("def:bus def:train poss:sister")),
    ("look at", "regarde", "regardez", objs("def:sea def:moon def:bird:pl")),
    ("listen to", "écoute", "écoutez", objs("dem:song def:radio part:music")),
)


def imperatives() -> Iterator[Pair]:
    """Imperatives: "Open the door." -> "Ouvre la porte." / "Ouvrez la porte."."""
    for en_verb, tu, vous, objects in IMPERATIVES:
        for det, key, plural in objects:
            n = NOUNS[key]
            for form, slot, please in (
                (tu, 1, "s'il te plaît"),
                (vous, 4, "s'il vous plaît"),
            ):
                en_obj = en_np(n, det, plural, "your")
                fr_obj = fr_np(n, det, plural, slot)
                yield finish_en([en_verb, en_obj]), finish_fr([form, *fr_obj])
                yield (
                    finish_en([en_verb, en_obj], "!"),
                    finish_fr([form, *fr_obj], "!"),
                )
                yield (
                    finish_en(["please", en_verb, en_obj]),
                    finish_fr([form, *fr_obj, ",", please]),
                )
                yield (
                    finish_en([en_verb, en_obj, ",", "please"]),
                    finish_fr([form, *fr_obj, ",", please]),
                )
                if det == "indef" and not plural:
                    continue
                fr_neg_obj = fr_np(n, negated_det(det), plural, slot)
                for neg in ("do not", "don't"):
                    yield (
                        finish_en([neg, en_verb, en_obj]),
                        finish_fr(["ne", form, "pas", *fr_neg_obj]),
                    )


FIXED_PHRASES: tuple[Pair, ...] = (
    ("Hello, everyone!", "Bonjour à tous !"),
    ("Good morning!", "Bonjour !"),
    ("Yes, please.", "Oui, s'il te plaît."),
    ("Yes, please.", "Oui, s'il vous plaît."),
    ("No, thank you.", "Non, merci."),
    ("Wait for me!", "Attends-moi !"),
    ("Wait for me!", "Attendez-moi !"),
    ("Good evening!", "Bonsoir !"),
    ("Good night!", "Bonne nuit !"),
    ("Goodbye!", "Au revoir !"),
    ("See you tomorrow!", "À demain !"),
    ("See you soon!", "À bientôt !"),
    ("Thank you.", "Merci."),
    ("Thank you very much.", "Merci beaucoup."),
    ("You're welcome.", "De rien."),
    ("Excuse me.", "Excusez-moi."),
    ("I'm sorry.", "Je suis désolé."),
    ("I'm sorry.", "Je suis désolée."),
    ("I am sorry.", "Je suis désolé."),
    ("Of course.", "Bien sûr."),
    ("I understand.", "Je comprends."),
    ("I don't understand.", "Je ne comprends pas."),
    ("I do not understand.", "Je ne comprends pas."),
    ("Do you understand?", "Comprends-tu ?"),
    ("Do you understand?", "Comprenez-vous ?"),
    ("I know.", "Je sais."),
    ("I don't know.", "Je ne sais pas."),
    ("I do not know.", "Je ne sais pas."),
    ("I love you.", "Je t'aime."),
    ("How are you?", "Comment vas-tu ?"),
    ("How are you?", "Comment allez-vous ?"),
    ("I'm fine, thank you.", "Je vais bien, merci."),
    ("I am fine.", "Je vais bien."),
    ("I'm fine.", "Je vais bien."),
    ("What is your name?", "Comment t'appelles-tu ?"),
    ("What's your name?", "Comment vous appelez-vous ?"),
    ("My name is Paul.", "Je m'appelle Paul."),
    ("My name is Marie.", "Je m'appelle Marie."),
    ("His name is Tom.", "Il s'appelle Tom."),
    ("Her name is Anna.", "Elle s'appelle Anna."),
    ("What is this?", "Qu'est-ce que c'est ?"),
    ("What's this?", "Qu'est-ce que c'est ?"),
    ("Who is it?", "Qui est-ce ?"),
    ("What time is it?", "Quelle heure est-il ?"),
    ("How much is it?", "C'est combien ?"),
    ("What is the weather like?", "Quel temps fait-il ?"),
    ("Be careful!", "Fais attention !"),
    ("Be careful!", "Faites attention !"),
    ("Come here!", "Viens ici !"),
    ("Come in!", "Entrez !"),
    ("Let's go!", "Allons-y !"),
    ("Good luck!", "Bonne chance !"),
    ("Happy birthday!", "Joyeux anniversaire !"),
    ("Have a nice day!", "Bonne journée !"),
    ("It's me.", "C'est moi."),
    ("It's true.", "C'est vrai."),
    ("It's important.", "C'est important."),
    ("It's easy.", "C'est facile."),
    ("It's difficult.", "C'est difficile."),
    ("It's not easy.", "Ce n'est pas facile."),
    ("It is late.", "Il est tard."),
    ("It is early.", "Il est tôt."),
    ("Where are the toilets?", "Où sont les toilettes ?"),
    ("I'm here.", "Je suis ici."),
    ("We are here.", "Nous sommes ici."),
    ("Speak slowly, please.", "Parlez lentement, s'il vous plaît."),
    ("Me too.", "Moi aussi."),
    ("Not me.", "Pas moi."),
)


def fixed_phrases() -> Iterator[Pair]:
    """Greetings and set phrases, written out in full."""
    yield from FIXED_PHRASES


# (name, generator, maximum number of pairs kept). Caps balance the families.
FAMILIES: tuple[tuple[str, Callable[[], Iterator[Pair]], int], ...] = (
    ("avoir_expressions", avoir_expressions, 1000),
    ("etre_people", etre_people, 900),
    ("etre_things", etre_things, 600),
    ("colour_objects", colour_objects, 220),
    ("verb_objects", verb_objects, 1200),
    ("intransitives", intransitives, 400),
    ("infinitives", infinitives, 420),
    ("places", places, 700),
    ("where_questions", where_questions, 300),
    ("possessives", possessives, 230),
    ("numbers", numbers, 330),
    ("weather", weather, 180),
    ("imperatives", imperatives, 140),
    ("fixed_phrases", fixed_phrases, 100),
)

# --------------------------------------------------------------------------------------
# Checks, corpus assembly, splitting, writing.
# --------------------------------------------------------------------------------------

_BAD_FRENCH = re.compile(
    r"\b(je|me|te|le|la|ne|de|que|ce) [aeiouyàâéèêîôûœh]"  # missed elision
    r"|\b(à|de) les?\b"  # missed contraction
    r"|  |\s[.,]|[^ ][?!]$|' ",
    re.IGNORECASE,
)


def check_pair(pair: Pair) -> None:
    """Raise ``ValueError`` if a generated pair breaks a mechanical rule."""
    en, fr = pair
    for text in pair:
        if "\t" in text or "\n" in text or not text[0].isupper():
            raise ValueError(f"malformed sentence: {text!r}")
        if text[-1] not in ".?!":
            raise ValueError(f"missing final punctuation: {text!r}")
    if _BAD_FRENCH.search(fr):
        raise ValueError(f"French typography/elision error: {fr!r}")
    if re.search(r"\s[?!.,]|  ", en):
        raise ValueError(f"English spacing error: {en!r}")


def short_enough(pair: Pair) -> bool:
    """Whether both sides have 2 to :data:`MAX_WORDS` words."""
    return all(2 <= len(text.split()) <= MAX_WORDS for text in pair)


def build_corpus() -> list[Pair]:
    """All families, each filtered, deduplicated and capped, merged in order.

    Raises ``ValueError`` if a must-be-in-train pair is not produced by any family
    (the list would then be out of step with the generator).
    """
    corpus: dict[Pair, None] = {}
    generated: set[Pair] = set()
    for name, generate, cap in FAMILIES:
        pairs = [p for p in dict.fromkeys(generate()) if short_enough(p)]
        for pair in pairs:
            check_pair(pair)
        generated.update(pairs)
        if len(pairs) > cap:
            pairs = random.Random(name).sample(pairs, cap)
        corpus.update(dict.fromkeys(pairs))
    for pair in MUST_BE_IN_TRAIN:
        if pair not in generated:
            raise ValueError(f"must-be-in-train pair is not generated: {pair}")
        corpus[pair] = None
    return list(corpus)


def split_corpus(pairs: list[Pair]) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """Shuffle with ``random.Random(0)`` and cut train/valid/test.

    The must-be-in-train pairs go to train; pairs beyond the three sizes are
    dropped.
    """
    must = [p for p in pairs if p in set(MUST_BE_IN_TRAIN)]
    rest = sorted(p for p in pairs if p not in set(MUST_BE_IN_TRAIN))
    rng = random.Random(SPLIT_SEED)
    rng.shuffle(rest)
    test = rest[:TEST_SIZE]
    valid = rest[TEST_SIZE : TEST_SIZE + VALID_SIZE]
    train = must + rest[TEST_SIZE + VALID_SIZE :][: TRAIN_SIZE - len(must)]
    if len(train) < TRAIN_SIZE:
        raise ValueError(f"only {len(train)} training pairs; raise the family caps")
    rng.shuffle(train)
    return train, valid, test


def write_tsv(path: Path, pairs: list[Pair]) -> None:
    """Write ``english<TAB>french`` lines, UTF-8, ``\\n`` line endings."""
    text = "".join(f"{en}\t{fr}\n" for en, fr in pairs)
    path.write_text(text, encoding="utf-8", newline="\n")


def main(argv: list[str] | None = None) -> None:
    """Generate the corpus and write the three splits."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help="output directory (default: data/quickstart, this script's folder)",
    )
    args = parser.parse_args(argv)
    train, valid, test = split_corpus(build_corpus())
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, pairs in (("train", train), ("valid", valid), ("test", test)):
        path = args.out_dir / f"{name}.tsv"
        write_tsv(path, pairs)
        print(f"{path}: {len(pairs)} pairs")


if __name__ == "__main__":
    main()
