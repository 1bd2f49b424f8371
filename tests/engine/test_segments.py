import string

import pytest

from engine.segments import Segmentation, segment, split_gsm_text

# The GSM 03.38 basic set as PROVIDERS.md spells it, without the escape code.
SPEC_BASIC_SET = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./"
    + string.digits
    + ":;<=>?¡"
    + string.ascii_uppercase
    + "ÄÖÑÜ§¿"
    + string.ascii_lowercase
    + "äöñüà"
)

ENGLISH_60 = "Your order has shipped and will arrive on Friday. Thank you!"
TURKISH_98 = (
    "Merhaba Ayşe, siparişiniz yola çıktı. Kargo takip numaranız 48213. "
    "İyi günler dileriz, teşekkürler"
)
GREEK_155 = (
    "γειά σας! η παραγγελία σας στάλθηκε σήμερα και θα φτάσει σε δύο ημέρες. "
    "ευχαριστούμε που ψωνίσατε μαζί μας. για ερωτήσεις καλέστε το κατάστημα στο 2101234."
)


def test_infobip_texts_have_the_lengths_the_examples_assume():
    assert (len(ENGLISH_60), len(TURKISH_98), len(GREEK_155)) == (60, 98, 155)


def gsm(length, parts, per_part, remaining):
    return Segmentation("GSM-7", length, parts, per_part, remaining, ())


def ucs2(length, parts, per_part, remaining, *chars):
    return Segmentation("UCS-2", length, parts, per_part, remaining, chars)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # empty text is still one part
        ("", gsm(0, 1, 160, 160)),
        # Infobip: 60-char English text
        (ENGLISH_60, gsm(60, 1, 160, 100)),
        # Infobip: 98-char Turkish text needs UCS-2 (ş, ç, ı, İ)
        (TURKISH_98, ucs2(98, 2, 67, 36, "ş", "ç", "ı", "İ")),
        # Infobip: 155-char Greek lowercase text, lowercase Greek is not GSM
        (GREEK_155, ucs2(155, 3, 67, 46, *dict.fromkeys(c for c in GREEK_155 if c.isalpha()))),
        # exactly one GSM-7 part
        ("a" * 160, gsm(160, 1, 160, 0)),
        # one septet over: two parts of 153
        ("a" * 161, gsm(161, 2, 153, 145)),
        # two full parts
        ("a" * 306, gsm(306, 2, 153, 0)),
        # one septet into a third part
        ("a" * 307, gsm(307, 3, 153, 152)),
        # every character of the spec's basic set costs one septet
        (SPEC_BASIC_SET, gsm(127, 1, 160, 33)),
        # capital Ç is in the basic set
        ("Ça va", gsm(5, 1, 160, 155)),
        # capital Greek letters that are in the basic set
        ("ΔΦΓΛΩΠΨΣΘΞ", gsm(10, 1, 160, 150)),
        # every extension character costs two septets
        ("\f^{}\\[~]|€", gsm(20, 1, 160, 140)),
        # 80 euro signs fill one part exactly
        ("€" * 80, gsm(160, 1, 160, 0)),
        # an extension character pushes 159 septets to 161
        ("a" * 159 + "€", gsm(161, 2, 153, 145)),
        # a brace at the start still fits: 2 + 158
        ("{" + "a" * 158, gsm(160, 1, 160, 0)),
        # two full parts ending in an extension character
        ("a" * 304 + "}", gsm(306, 2, 153, 0)),
        # an extension character pushes two full parts into a third
        ("a" * 305 + "}", gsm(307, 3, 153, 152)),
        # lowercase ç is not in the basic set
        ("ça va", ucs2(5, 1, 70, 65, "ç")),
        # Greek capital alpha looks like A but is not GSM
        ("ΑΒΓ", ucs2(3, 1, 70, 67, "Α", "Β")),
        # exactly one UCS-2 part
        ("ç" * 70, ucs2(70, 1, 70, 0, "ç")),
        # one unit over: two parts of 67
        ("ç" * 71, ucs2(71, 2, 67, 63, "ç")),
        # in UCS-2 the euro sign is one unit, not two septets
        ("ç" + "€" * 69, ucs2(70, 1, 70, 0, "ç")),
        # an emoji is a surrogate pair: two units
        ("😀", ucs2(2, 1, 70, 68, "😀")),
        # 35 emoji fill one part exactly
        ("😀" * 35, ucs2(70, 1, 70, 0, "😀")),
        # an emoji pushes 69 units to 71
        ("a" * 69 + "😀", ucs2(71, 2, 67, 63, "😀")),
        # a BMP symbol outside GSM is one unit
        ("a" * 69 + "✓", ucs2(70, 1, 70, 0, "✓")),
        # distinct UCS-2 characters in order of first appearance; ü is GSM
        ("ğüçğ😀ç", ucs2(7, 1, 70, 63, "ğ", "ç", "😀")),
    ],
)
def test_segment(text, expected):
    assert segment(text) == expected


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        # a text that fits one part comes back whole
        ("a" * 160, {}, ["a" * 160]),
        # one over: 153 then the rest
        ("a" * 161, {}, ["a" * 153, "a" * 8]),
        # an escape pair that would straddle 153 moves to the next piece
        ("a" * 152 + "€" + "b" * 10, {}, ["a" * 152, "€" + "b" * 10]),
        # an escape pair ending exactly at 153 stays
        ("a" * 151 + "€" + "b" * 10, {}, ["a" * 151 + "€", "b" * 10]),
        # a text that fits one UCS-2 part comes back whole
        ("ç" * 70, {}, ["ç" * 70]),
        # UCS-2 text is cut at 67 units
        ("ç" * 71, {}, ["ç" * 67, "ç" * 4]),
        # a surrogate pair that would straddle 67 moves to the next piece
        ("ç" * 66 + "😀" + "ç" * 10, {}, ["ç" * 66, "😀" + "ç" * 10]),
        # custom GSM-7 limits
        ("a" * 20, {"limit": 10, "per_part": 8}, ["a" * 8, "a" * 8, "a" * 4]),
        # custom limits for GSM-7 leave UCS-2 text at 70/67
        ("ç" * 70, {"limit": 10, "per_part": 8}, ["ç" * 70]),
        # custom UCS-2 limits
        ("ç" * 12, {"ucs2_limit": 10, "ucs2_per_part": 5}, ["ç" * 5, "ç" * 5, "ç" * 2]),
        # empty text is one empty piece
        ("", {}, [""]),
    ],
)
def test_split_gsm_text(text, kwargs, expected):
    assert split_gsm_text(text, **kwargs) == expected


@pytest.mark.parametrize(
    "text",
    [
        # plain GSM-7
        "Hello world. " * 30,
        # extension characters everywhere
        "{price} €5 [ok] " * 25,
        # UCS-2 with emoji
        "Ahoj 😀 čau! " * 20,
        # Infobip's Greek text
        GREEK_155,
    ],
)
def test_split_pieces_rebuild_the_text_and_each_fits_one_part(text):
    pieces = split_gsm_text(text)
    assert "".join(pieces) == text
    assert all(segment(piece).parts == 1 for piece in pieces)
    assert all(segment(piece).length <= segment(text).per_part for piece in pieces)
    assert len(pieces) == segment(text).parts


def test_keeping_an_escape_pair_whole_can_add_a_piece():
    # 306 septets are two parts by arithmetic, but the pair at 153/154 cannot be cut.
    text = "a" * 152 + "€" + "b" * 152
    assert segment(text).parts == 2
    assert split_gsm_text(text) == ["a" * 152, "€" + "b" * 151, "b"]


def test_split_rejects_a_part_too_small_for_a_pair():
    with pytest.raises(ValueError, match="per_part must be at least 2"):
        split_gsm_text("a" * 5, limit=1, per_part=1)
