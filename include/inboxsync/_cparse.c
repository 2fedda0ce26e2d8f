/* The parse's fast path in C: `parse(raw)` reads the header shape nearly every fetched message
 * has and returns the parts of its row, or None for anything else.
 *
 * inboxsync.parse stays the reference: it calls this first and falls back to its own general
 * code on None, and tests/unit/test_cparse.py compares the two on every header of the real-mail
 * corpora and on generated ones. So this file only takes headers it can read exactly as the
 * Python code does, and says None at the first sign of anything else:
 *
 *   - ASCII only, every line break a CRLF, no control character but tab (the IMAP answer's shape);
 *   - only well-formed fields ("Name: value" and continuation lines) up to an empty line or the
 *     end: the shape of parse._split_fields, whose answer it gives;
 *   - a Message-ID in angle brackets (the key is then SHA-256 of it; a message without one is
 *     keyed by its canonical header, which is Python's work);
 *   - no multipart/report, no delivery-system sender, no null envelope sender, no comment in
 *     Precedence or Auto-Submitted: the classification needs no subject-word search but the
 *     vacation words under Precedence bulk or junk, which it leaves to Python (see below).
 *
 * The answer is a tuple (see the PyTuple_Pack call at the end of cparse_parse):
 *   0 message_key, 1 message_id, 2 subject (cleaned, or the raw value when 3 is True),
 *   3 subject_encoded (the raw value holds "=?": Python decodes it), 4 sent_at (a UTC datetime,
 *   None, or the unfolded Date as str when only parse.parse_date can read it), 5 date_header,
 *   6 in_reply_to, 7 references (tuple), 8 the address fields [(role, raw value), ...] in header
 *   order, 9 kind, 10 check_vacation (kind becomes auto_reply when the subject has vacation
 *   words), 11 list_id, 12 auto_submitted, 13 content_type.
 * `message(*values)` then builds the ParsedMessage without the cost of a frozen dataclass's
 * __init__, and `copy_lines(...)` writes a batch's stg_messages, stg_addresses and
 * stg_references COPY text as inboxsync.load's line builders do (they are its reference and
 * fallback: tests/unit/test_copy_text.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>
#include <string.h>

/* Limits of parse.py (MAX_SUBJECT, MAX_SHORT_TEXT, MAX_MESSAGE_ID, MAX_REFERENCES): the module
 * is given them at import time by parse.py (configure), so they are written once. */
static Py_ssize_t max_subject = -1, max_short_text = -1, max_message_id = -1, max_references = -1;

/* ---------------------------------------------------------------- the fields we read */

enum {
    F_FROM, F_SENDER, F_REPLY_TO, F_TO, F_CC, F_BCC, F_SUBJECT, F_DATE, F_MESSAGE_ID,
    F_IN_REPLY_TO, F_REFERENCES, F_AUTO_SUBMITTED, F_X_AUTOREPLY, F_X_AUTORESPOND, F_PRECEDENCE,
    F_LIST_ID, F_LIST_UNSUBSCRIBE, F_CONTENT_TYPE, F_RETURN_PATH, F_COUNT
};

static const char *const FIELD_NAMES[F_COUNT] = {
    "from", "sender", "reply-to", "to", "cc", "bcc", "subject", "date", "message-id",
    "in-reply-to", "references", "auto-submitted", "x-autoreply", "x-autorespond", "precedence",
    "list-id", "list-unsubscribe", "content-type", "return-path",
};

/* The address fields come first in the enum; their roles in message_addresses. */
#define ADDRESS_FIELDS 6
static const char *const ROLE_NAMES[ADDRESS_FIELDS] = {
    "from", "sender", "reply_to", "to", "cc", "bcc",
};
static PyObject *roles[ADDRESS_FIELDS];
static PyObject *kind_auto_reply, *kind_list, *kind_bulk, *kind_human;

typedef struct {
    const char *start;
    Py_ssize_t len;
} span;

static Py_ssize_t field_lengths[F_COUNT];

/* The lower-cased name of a field, looked up among FIELD_NAMES; -1 when it is not one. */
static int field_index(const char *name, Py_ssize_t len)
{
    char lowered[24];
    if (len >= (Py_ssize_t)sizeof(lowered)) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        char c = name[i];
        lowered[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    for (int f = 0; f < F_COUNT; f++) {
        if (field_lengths[f] == len && memcmp(lowered, FIELD_NAMES[f], (size_t)len) == 0) {
            return f;
        }
    }
    return -1;
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }

static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

/* ---------------------------------------------------------------- text helpers */

/* A growable byte buffer holding the unfolded values of one message. */
typedef struct {
    char *data;
    Py_ssize_t len, cap;
} buffer;

static int buffer_reserve(buffer *b, Py_ssize_t extra)
{
    if (b->len + extra <= b->cap) {
        return 0;
    }
    Py_ssize_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra) {
        cap *= 2;
    }
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

/* parse._unfold for a value whose line breaks are all CRLF (the only ones the fast path takes):
 * the value cut at each line break; the first piece right-stripped of blanks, the inner pieces
 * stripped and dropped when empty, the last left-stripped and kept; joined by one space. (Cutting
 * at each CR and at each LF, as parse._unfold does, only adds the empty pieces between a CR and
 * its LF, which are inner pieces and dropped.) The result is appended to `out` and returned as
 * an offset/length pair. */
static int unfold(span value, buffer *out, Py_ssize_t *offset, Py_ssize_t *length)
{
    const char *s = value.start, *end = value.start + value.len;
    if (buffer_reserve(out, value.len + 1) < 0) {
        return -1;
    }
    *offset = out->len;
    const char *brk = value.len ? memchr(s, '\r', (size_t)value.len) : NULL;
    if (brk == NULL) {
        memcpy(out->data + out->len, s, (size_t)value.len);
        out->len += value.len;
        *length = value.len;
        return 0;
    }
    char *w = out->data + out->len;
    /* The first piece, right-stripped. */
    const char *piece_end = brk;
    while (piece_end > s && is_blank(piece_end[-1])) {
        piece_end--;
    }
    memcpy(w, s, (size_t)(piece_end - s));
    w += piece_end - s;
    *w++ = ' ';
    int wrote_inner = 0;
    const char *p = brk + 2;
    for (;;) {
        const char *q = p < end ? memchr(p, '\r', (size_t)(end - p)) : NULL;
        if (q == NULL) {
            /* The last piece: left-stripped, kept even when empty. */
            while (p < end && is_blank(*p)) {
                p++;
            }
            if (wrote_inner) {
                *w++ = ' ';
            }
            if (p < end) {
                memcpy(w, p, (size_t)(end - p));
                w += end - p;
            }
            break;
        }
        /* An inner piece: stripped, dropped when empty. */
        const char *a = p, *b = q;
        while (a < b && is_blank(*a)) {
            a++;
        }
        while (b > a && is_blank(b[-1])) {
            b--;
        }
        if (b > a) {
            if (wrote_inner) {
                *w++ = ' ';
            }
            memcpy(w, a, (size_t)(b - a));
            w += b - a;
            wrote_inner = 1;
        }
        p = q + 2;
    }
    *length = (w - out->data) - out->len;
    out->len = w - out->data;
    return 0;
}

/* parse._clean for ASCII text without controls but tab: stripped of blanks, cut at `limit`
 * characters, right-stripped again; None when nothing is left. */
static PyObject *clean(const char *s, Py_ssize_t len, Py_ssize_t limit)
{
    while (len > 0 && is_blank(*s)) {
        s++;
        len--;
    }
    while (len > 0 && is_blank(s[len - 1])) {
        len--;
    }
    if (len > limit) {
        len = limit;
        while (len > 0 && is_blank(s[len - 1])) {
            len--;
        }
    }
    if (len == 0) {
        Py_RETURN_NONE;
    }
    return PyUnicode_DecodeASCII(s, len, NULL);
}

static int has_text(const char *s, Py_ssize_t len)
{
    for (Py_ssize_t i = 0; i < len; i++) {
        if (!is_blank(s[i])) {
            return 1;
        }
    }
    return 0;
}

static int contains(const char *s, Py_ssize_t len, const char *needle)
{
    Py_ssize_t n = (Py_ssize_t)strlen(needle);
    for (Py_ssize_t i = 0; i + n <= len; i++) {
        if (memcmp(s + i, needle, (size_t)n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Whether the text, lower-cased and without its blanks, contains "daemon" or "master":
 * classify's pre-check of a delivery-system name (every such name holds one of them), on the
 * compacted Return-Path as classify reads it, and a superset of its check of From and Sender.
 * Neither word has a proper prefix that is also a suffix, so a mismatch restarts the match at
 * the current character. */
static int names_delivery_system(const char *s, Py_ssize_t len)
{
    int daemon = 0, master = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        char c = lower(s[i]);
        if (is_blank(c)) {
            continue;
        }
        daemon = c == "daemon"[daemon] ? daemon + 1 : (c == 'd');
        master = c == "master"[master] ? master + 1 : (c == 'm');
        if (daemon == 6 || master == 6) {
            return 1;
        }
    }
    return 0;
}

/* The text without its blanks is exactly "<>". */
static int is_null_path(const char *s, Py_ssize_t len)
{
    int seen = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        if (is_blank(s[i])) {
            continue;
        }
        if (seen == 0 && s[i] == '<') {
            seen = 1;
        } else if (seen == 1 && s[i] == '>') {
            seen = 2;
        } else {
            return 0;
        }
    }
    return seen == 2;
}

/* ---------------------------------------------------------------- msg-ids */

/* The next "<...>" without "<" or ">" inside (the regex <([^<>]*)>), from `*pos`; its inside
 * is returned, *pos moves past it. 0 when there is none. */
static int next_bracketed(const char *s, Py_ssize_t len, Py_ssize_t *pos, span *inside)
{
    Py_ssize_t i = *pos;
    while (i < len) {
        const char *open = memchr(s + i, '<', (size_t)(len - i));
        if (open == NULL) {
            break;
        }
        i = open - s;
        const char *close = memchr(open + 1, '>', (size_t)(len - i - 1));
        if (close == NULL) {
            break; /* no ">" after it: no match at all */
        }
        const char *reopen = memchr(open + 1, '<', (size_t)(close - open - 1));
        if (reopen != NULL) {
            i = reopen - s; /* no match starts before the inner "<" */
            continue;
        }
        inside->start = open + 1;
        inside->len = close - open - 1;
        *pos = close - s + 1;
        return 1;
    }
    *pos = len;
    return 0;
}

#define FALLBACK 2 /* a helper's answer: the Python code must decide */

/* parse._first_msg_id of an unfolded value: the first non-empty bracketed id (cut at the
 * limit), None when every bracketed id is empty, FALLBACK when there is none (the token path)
 * or an id holds whitespace (removed by the general path). */
static int first_msg_id(const char *s, Py_ssize_t len, PyObject **result)
{
    Py_ssize_t pos = 0;
    span id;
    int found = 0;
    span first = {NULL, 0};
    while (next_bracketed(s, len, &pos, &id)) {
        found = 1;
        for (Py_ssize_t i = 0; i < id.len; i++) {
            if (is_blank(id.start[i])) {
                return FALLBACK;
            }
        }
        if (id.len && first.start == NULL) {
            first = id;
        }
    }
    if (!found) {
        if (has_text(s, len)) {
            return FALLBACK;
        }
        *result = Py_NewRef(Py_None);
        return 0;
    }
    if (first.start == NULL) {
        *result = Py_NewRef(Py_None);
        return 0;
    }
    *result = PyUnicode_DecodeASCII(first.start, Py_MIN(first.len, max_message_id), NULL);
    return *result == NULL ? -1 : 0;
}

/* parse._references: every non-empty bracketed id, cut at the limit, each once (the first
 * time), the last `max_references` kept. FALLBACK as for first_msg_id. */
static int references(const char *s, Py_ssize_t len, PyObject **result)
{
    Py_ssize_t pos = 0;
    span id;
    int found = 0;
    PyObject *ids = PyDict_New(); /* insertion-ordered: dict.fromkeys, as parse.py */
    if (ids == NULL) {
        return -1;
    }
    while (next_bracketed(s, len, &pos, &id)) {
        found = 1;
        for (Py_ssize_t i = 0; i < id.len; i++) {
            if (is_blank(id.start[i])) {
                Py_DECREF(ids);
                return FALLBACK;
            }
        }
        if (id.len == 0) {
            continue;
        }
        PyObject *text = PyUnicode_DecodeASCII(id.start, Py_MIN(id.len, max_message_id), NULL);
        if (text == NULL || PyDict_SetDefault(ids, text, Py_None) == NULL) {
            Py_XDECREF(text);
            Py_DECREF(ids);
            return -1;
        }
        Py_DECREF(text);
    }
    if (!found && has_text(s, len)) {
        Py_DECREF(ids);
        return FALLBACK;
    }
    PyObject *keys = PyDict_Keys(ids);
    Py_DECREF(ids);
    if (keys == NULL) {
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(keys);
    Py_ssize_t skip = n > max_references ? n - max_references : 0;
    *result = PyList_GetSlice(keys, skip, n);
    Py_DECREF(keys);
    if (*result == NULL) {
        return -1;
    }
    Py_SETREF(*result, PyList_AsTuple(*result));
    return *result == NULL ? -1 : 0;
}

/* ---------------------------------------------------------------- the message key */

/* SHA-256 (FIPS 180-4), for the key of a Message-ID: parse.key_of_message_id's digest. */
static const uint32_t SHA_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *block)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
        w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 |
               (uint32_t)block[4 * i + 2] << 8 | (uint32_t)block[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) +
                      SHA_K[i] + w[i];
        uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

/* The first 16 bytes of SHA-256("mid:" + id), as 32 lower-case hex characters. */
static PyObject *message_key(const char *id, Py_ssize_t len)
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    unsigned char block[64];
    Py_ssize_t total = 4 + len, used = 0, taken = 0;
    const char *prefix = "mid:";
    uint64_t bits = (uint64_t)total * 8;
    /* The message, then 0x80, zeros, and the length in bits: whole blocks. */
    Py_ssize_t padded = ((total + 8) / 64 + 1) * 64;
    for (Py_ssize_t at = 0; at < padded; at++) {
        unsigned char byte;
        if (at < 4) {
            byte = (unsigned char)prefix[at];
        } else if (at < total) {
            byte = (unsigned char)id[taken++];
        } else if (at == total) {
            byte = 0x80;
        } else if (at >= padded - 8) {
            byte = (unsigned char)(bits >> (8 * (padded - 1 - at)));
        } else {
            byte = 0;
        }
        block[used++] = byte;
        if (used == 64) {
            sha256_block(h, block);
            used = 0;
        }
    }
    static const char hex[] = "0123456789abcdef";
    char out[32];
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++) {
            unsigned char byte = (unsigned char)(h[i] >> (24 - 8 * j));
            out[8 * i + 2 * j] = hex[byte >> 4];
            out[8 * i + 2 * j + 1] = hex[byte & 15];
        }
    }
    return PyUnicode_DecodeASCII(out, 32, NULL);
}

/* ---------------------------------------------------------------- the Date */

static int digits(const char *s, Py_ssize_t len, Py_ssize_t at, int n, int *value)
{
    if (at + n > len) {
        return 0;
    }
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = s[at + i];
        if (c < '0' || c > '9') {
            return 0;
        }
        v = v * 10 + (c - '0');
    }
    *value = v;
    return 1;
}

static Py_ssize_t skip_blanks(const char *s, Py_ssize_t len, Py_ssize_t at)
{
    while (at < len && is_blank(s[at])) {
        at++;
    }
    return at;
}

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Days from 1970-01-01 to a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) {
        return 29;
    }
    return days[m - 1];
}

/* parse.parse_date for its common shape (parse._SIMPLE_DATE, read by hand):
 * "[ \t]*([A-Za-z]+,[ \t]*)?D{1,2}[ \t]+Mon[ \t]+YYYY[ \t]+HH:MM:SS[ \t]+(+|-)ZZZZ
 *  ([ \t]*\([^()]*\))?[ \t]*". The UTC datetime, None for a blank value, FALLBACK for any other
 * shape and for what the shape allows but needs Python's answer (an impossible date or time, a
 * year outside 1901-2199, an offset of a day or more). */
static int parse_date(const char *s, Py_ssize_t len, PyObject **result)
{
    static const char *const months[12] = {"jan", "feb", "mar", "apr", "may", "jun",
                                           "jul", "aug", "sep", "oct", "nov", "dec"};
    if (!has_text(s, len)) {
        *result = Py_NewRef(Py_None);
        return 0;
    }
    Py_ssize_t at = skip_blanks(s, len, 0);
    if (at < len && is_alpha(s[at])) {
        while (at < len && is_alpha(s[at])) {
            at++;
        }
        if (at >= len || s[at] != ',') {
            return FALLBACK;
        }
        at = skip_blanks(s, len, at + 1);
    }
    int day, year, hour, minute, second, zone_hours, zone_minutes, month = 0;
    if (digits(s, len, at, 2, &day)) {
        at += 2;
    } else if (digits(s, len, at, 1, &day)) {
        at += 1;
    } else {
        return FALLBACK;
    }
    Py_ssize_t next = skip_blanks(s, len, at);
    if (next == at || next + 3 > len) {
        return FALLBACK;
    }
    at = next;
    if (!is_alpha(s[at]) || !is_alpha(s[at + 1]) || !is_alpha(s[at + 2])) {
        return FALLBACK;
    }
    for (int i = 0; i < 12; i++) {
        if (lower(s[at]) == months[i][0] && lower(s[at + 1]) == months[i][1] &&
            lower(s[at + 2]) == months[i][2]) {
            month = i + 1;
        }
    }
    at += 3;
    next = skip_blanks(s, len, at);
    if (next == at || !digits(s, len, next, 4, &year)) {
        return FALLBACK;
    }
    at = next + 4;
    next = skip_blanks(s, len, at);
    if (next == at || !digits(s, len, next, 2, &hour) || next + 2 >= len || s[next + 2] != ':' ||
        !digits(s, len, next + 3, 2, &minute) || next + 5 >= len || s[next + 5] != ':' ||
        !digits(s, len, next + 6, 2, &second)) {
        return FALLBACK;
    }
    at = next + 8;
    next = skip_blanks(s, len, at);
    if (next == at || next >= len || (s[next] != '+' && s[next] != '-') ||
        !digits(s, len, next + 1, 2, &zone_hours) || !digits(s, len, next + 3, 2, &zone_minutes)) {
        return FALLBACK;
    }
    int sign = s[next] == '-' ? -1 : 1;
    at = skip_blanks(s, len, next + 5);
    if (at < len && s[at] == '(') {
        at++;
        while (at < len && s[at] != '(' && s[at] != ')') {
            at++;
        }
        if (at >= len || s[at] != ')') {
            return FALLBACK;
        }
        at = skip_blanks(s, len, at + 1);
    }
    if (at != len || month == 0) {
        return FALLBACK;
    }
    /* The shape holds: what is left would make parse_date return None, or is rare; Python. */
    int offset = sign * (zone_hours * 3600 + zone_minutes * 60);
    if (year < 1901 || year > 2199 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
        minute > 59 || second > 59 || offset <= -86400 || offset >= 86400) {
        return FALLBACK;
    }
    int64_t seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 +
                      second - offset;
    int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
    int64_t in_day = seconds - days * 86400;
    civil_from_days(days, &year, &month, &day);
    *result = PyDateTimeAPI->DateTime_FromDateAndTime(
        year, month, day, (int)(in_day / 3600), (int)(in_day / 60 % 60), (int)(in_day % 60), 0,
        PyDateTime_TimeZone_UTC, PyDateTimeAPI->DateTimeType);
    return *result == NULL ? -1 : 0;
}

/* ---------------------------------------------------------------- classification */

/* classify._first_token: up to ";", stripped, lower-cased, the first word; FALLBACK when the
 * value holds a comment. Writes at most `size - 1` characters (longer tokens are no keyword). */
static int first_token(const char *s, Py_ssize_t len, char *token, size_t size)
{
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        if (s[i] == '(') {
            return FALLBACK;
        }
    }
    while (at < len && is_blank(s[at])) {
        at++;
    }
    size_t n = 0;
    while (at < len && s[at] != ';' && !is_blank(s[at])) {
        if (n + 1 < size) {
            token[n] = lower(s[at]);
        }
        n++;
        at++;
    }
    if (n + 1 >= size) {
        n = size - 1;
        token[n] = '\0';
        token[0] = '\x01'; /* too long for any keyword: matches none */
        return 0;
    }
    token[n] = '\0';
    return 0;
}

static int is_negative(const char *token)
{
    return !strcmp(token, "") || !strcmp(token, "no") || !strcmp(token, "false") ||
           !strcmp(token, "off") || !strcmp(token, "0");
}

/* ---------------------------------------------------------------- the module function */

static PyObject *cparse_parse(PyObject *module, PyObject *arg)
{
    (void)module;
    if (!PyBytes_Check(arg)) {
        Py_RETURN_NONE; /* Python's code fails on it, as it always did */
    }
    if (max_subject < 0) {
        PyErr_SetString(PyExc_RuntimeError, "inboxsync._cparse is not configured");
        return NULL;
    }
    const char *text = PyBytes_AS_STRING(arg);
    Py_ssize_t size = PyBytes_GET_SIZE(arg);

    /* The shape: ASCII, no control but tab, CRLF line breaks only. Eight bytes at a time: a word
     * with no byte below 0x20, none at 0x7f and none from 0x80 on needs no closer look. */
    for (Py_ssize_t i = 0; i < size; i++) {
        while (i + 8 <= size) {
            uint64_t word;
            memcpy(&word, text + i, 8);
            const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
            uint64_t below_space = (word - ones * 0x20) & ~word;
            uint64_t is_del = ((word ^ (ones * 0x7f)) - ones) & ~(word ^ (ones * 0x7f));
            if ((below_space | is_del | word) & highs) {
                break;
            }
            i += 8;
        }
        if (i >= size) {
            break;
        }
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c < 0x7f) {
            continue;
        }
        if (c == '\t') {
            continue;
        }
        if (c == '\r' && i + 1 < size && text[i + 1] == '\n') {
            i++;
            continue;
        }
        Py_RETURN_NONE;
    }

    /* Well-formed fields up to an empty line or the end (parse._split_fields). */
    span first[F_COUNT];
    memset(first, 0, sizeof(first));
    span address_values[64];
    int address_roles[64];
    int addresses = 0, fields = 0;
    Py_ssize_t at = 0;
    while (at < size) {
        if (text[at] == '\r') {
            break; /* the empty line: the header ends */
        }
        Py_ssize_t name_start = at;
        while (at < size && text[at] > ' ' && text[at] < 0x7f && text[at] != ':') {
            at++;
        }
        if (at == name_start || at >= size || text[at] != ':') {
            Py_RETURN_NONE; /* not a field: the stdlib parser's repair decides */
        }
        int index = field_index(text + name_start, at - name_start);
        at++;
        while (at < size && is_blank(text[at])) {
            at++;
        }
        Py_ssize_t value_start = at;
        for (;;) {
            const char *cr = memchr(text + at, '\r', (size_t)(size - at));
            at = cr ? cr - text : size;
            if (at + 2 < size && is_blank(text[at + 2])) {
                at += 3; /* a continuation line */
                continue;
            }
            break;
        }
        span value = {text + value_start, at - value_start};
        at = at + 2 <= size ? at + 2 : size;
        fields++;
        if (index < 0) {
            continue;
        }
        if (first[index].start == NULL) {
            first[index] = value;
        }
        if (index < ADDRESS_FIELDS) {
            if (addresses == 64) {
                Py_RETURN_NONE;
            }
            address_roles[addresses] = index;
            address_values[addresses++] = value;
        }
    }
    if (fields == 0) {
        Py_RETURN_NONE;
    }

    /* Unfold the first value of each field read (parse._parse's `first`). */
    buffer unfolded = {NULL, 0, 0};
    Py_ssize_t offsets[F_COUNT], lengths[F_COUNT];
    for (int f = 0; f < F_COUNT; f++) {
        offsets[f] = lengths[f] = 0;
        if (first[f].start != NULL && unfold(first[f], &unfolded, &offsets[f], &lengths[f]) < 0) {
            PyMem_Free(unfolded.data);
            return NULL;
        }
    }
#define VALUE(f) (unfolded.data + offsets[f])
#define LENGTH(f) (lengths[f])

    PyObject *result = NULL;
    PyObject *key = NULL, *message_id = NULL, *subject = NULL, *sent_at = NULL;
    PyObject *date_header = NULL, *in_reply_to = NULL, *refs = NULL, *address_list = NULL;
    PyObject *list_id = NULL, *auto_submitted = NULL, *content_type = NULL;
    PyObject *kind = NULL;
    int check_vacation = 0, subject_encoded = 0, rc;
    char token[32];

    /* A message with no identity is quarantined, and one without a Message-ID is keyed by its
     * header: both are Python's work. */
    if (!has_text(VALUE(F_FROM), LENGTH(F_FROM)) && !has_text(VALUE(F_SENDER), LENGTH(F_SENDER)) &&
        !has_text(VALUE(F_MESSAGE_ID), LENGTH(F_MESSAGE_ID)) &&
        !has_text(VALUE(F_DATE), LENGTH(F_DATE)) &&
        !has_text(VALUE(F_SUBJECT), LENGTH(F_SUBJECT)) && !has_text(VALUE(F_TO), LENGTH(F_TO))) {
        goto fallback;
    }

    /* The classification (classify.classify_fields) where no rule needs a closer look. */
    if (first[F_CONTENT_TYPE].start != NULL) {
        const char *ct = VALUE(F_CONTENT_TYPE);
        Py_ssize_t n = LENGTH(F_CONTENT_TYPE), i = 0;
        while (i < n && is_blank(ct[i])) {
            i++;
        }
        static const char report[] = "multipart/report";
        Py_ssize_t r = 0;
        while (r < 16 && i + r < n && lower(ct[i + r]) == report[r]) {
            r++;
        }
        if (r == 16) {
            goto fallback;
        }
    }
    if (names_delivery_system(VALUE(F_FROM), LENGTH(F_FROM)) ||
        names_delivery_system(VALUE(F_SENDER), LENGTH(F_SENDER)) ||
        names_delivery_system(VALUE(F_RETURN_PATH), LENGTH(F_RETURN_PATH)) ||
        (first[F_RETURN_PATH].start != NULL &&
         is_null_path(VALUE(F_RETURN_PATH), LENGTH(F_RETURN_PATH))) ||
        (first[F_FROM].start != NULL && is_null_path(VALUE(F_FROM), LENGTH(F_FROM)))) {
        goto fallback;
    }
    for (int f = F_AUTO_SUBMITTED; f <= F_X_AUTORESPOND; f++) {
        if (first[f].start == NULL) {
            continue;
        }
        if (first_token(VALUE(f), LENGTH(f), token, sizeof(token)) == FALLBACK) {
            goto fallback;
        }
        if (!is_negative(token)) {
            kind = kind_auto_reply;
            break;
        }
    }
    if (first_token(VALUE(F_PRECEDENCE), LENGTH(F_PRECEDENCE), token, sizeof(token)) ==
        FALLBACK) {
        goto fallback;
    }
    if (kind == NULL) {
        if (!strcmp(token, "auto_reply")) {
            kind = kind_auto_reply;
        } else {
            /* Bulk or junk Precedence supports a vacation subject: Python searches for one. */
            check_vacation = !strcmp(token, "bulk") || !strcmp(token, "junk");
            if (has_text(VALUE(F_LIST_ID), LENGTH(F_LIST_ID)) || !strcmp(token, "list")) {
                kind = kind_list;
            } else if (check_vacation ||
                       has_text(VALUE(F_LIST_UNSUBSCRIBE), LENGTH(F_LIST_UNSUBSCRIBE))) {
                kind = kind_bulk;
            } else {
                kind = kind_human;
            }
        }
    }

    /* The message's identity. */
    rc = first_msg_id(VALUE(F_MESSAGE_ID), LENGTH(F_MESSAGE_ID), &message_id);
    if (rc) {
        goto rc_error;
    }
    if (message_id == Py_None) {
        goto fallback;
    }
    Py_ssize_t id_length;
    const char *id_text = PyUnicode_AsUTF8AndSize(message_id, &id_length);
    if (id_text == NULL || (key = message_key(id_text, id_length)) == NULL) {
        goto error;
    }
    rc = first_msg_id(VALUE(F_IN_REPLY_TO), LENGTH(F_IN_REPLY_TO), &in_reply_to);
    if (rc) {
        goto rc_error;
    }
    if (LENGTH(F_REFERENCES) == 0) {
        refs = PyTuple_New(0);
        if (refs == NULL) {
            goto error;
        }
    } else if ((rc = references(VALUE(F_REFERENCES), LENGTH(F_REFERENCES), &refs))) {
        goto rc_error;
    }

    /* Subject (decoded before unfolding when it holds encoded words: Python's part). */
    if (contains(first[F_SUBJECT].start, first[F_SUBJECT].len, "=?")) {
        subject_encoded = 1;
        subject = PyUnicode_DecodeASCII(first[F_SUBJECT].start, first[F_SUBJECT].len, NULL);
    } else {
        subject = clean(VALUE(F_SUBJECT), LENGTH(F_SUBJECT), max_subject);
    }
    if (subject == NULL) {
        goto error;
    }

    /* Date. */
    if ((date_header = clean(VALUE(F_DATE), LENGTH(F_DATE), max_short_text)) == NULL) {
        goto error;
    }
    rc = parse_date(VALUE(F_DATE), LENGTH(F_DATE), &sent_at);
    if (rc == FALLBACK) {
        sent_at = PyUnicode_DecodeASCII(VALUE(F_DATE), LENGTH(F_DATE), NULL);
        rc = sent_at == NULL ? -1 : 0;
    }
    if (rc) {
        goto error;
    }

    /* List-Id (parse._list_id): the first bracketed id, else the last word; no whitespace,
     * lower-cased. */
    {
        const char *v = VALUE(F_LIST_ID);
        Py_ssize_t n = LENGTH(F_LIST_ID), pos = 0;
        span id;
        if (!next_bracketed(v, n, &pos, &id)) {
            Py_ssize_t e = n;
            while (e > 0 && is_blank(v[e - 1])) {
                e--;
            }
            Py_ssize_t b = e;
            while (b > 0 && !is_blank(v[b - 1])) {
                b--;
            }
            id.start = v + b;
            id.len = e - b;
        }
        char *compact = PyMem_Malloc((size_t)id.len + 1);
        if (compact == NULL) {
            PyErr_NoMemory();
            goto error;
        }
        Py_ssize_t k = 0;
        for (Py_ssize_t i = 0; i < id.len; i++) {
            if (!is_blank(id.start[i])) {
                compact[k++] = lower(id.start[i]);
            }
        }
        list_id = clean(compact, k, max_short_text);
        PyMem_Free(compact);
        if (list_id == NULL) {
            goto error;
        }
    }

    /* Content-Type (parse._content_type): the media type before ";", no whitespace,
     * lower-cased; None without "/". */
    {
        const char *v = VALUE(F_CONTENT_TYPE);
        Py_ssize_t n = LENGTH(F_CONTENT_TYPE), k = 0;
        char *compact = PyMem_Malloc((size_t)n + 1);
        int slash = 0;
        if (compact == NULL) {
            PyErr_NoMemory();
            goto error;
        }
        for (Py_ssize_t i = 0; i < n && v[i] != ';'; i++) {
            if (!is_blank(v[i])) {
                compact[k++] = lower(v[i]);
                slash |= v[i] == '/';
            }
        }
        content_type = slash ? clean(compact, k, max_short_text) : Py_NewRef(Py_None);
        PyMem_Free(compact);
        if (content_type == NULL) {
            goto error;
        }
    }
    auto_submitted = clean(VALUE(F_AUTO_SUBMITTED), LENGTH(F_AUTO_SUBMITTED), max_short_text);
    if (auto_submitted == NULL) {
        goto error;
    }

    /* The address fields' raw values, for Python's cached address parse. */
    if ((address_list = PyList_New(addresses)) == NULL) {
        goto error;
    }
    for (int i = 0; i < addresses; i++) {
        PyObject *value = PyUnicode_DecodeASCII(address_values[i].start, address_values[i].len,
                                                NULL);
        PyObject *pair = value ? PyTuple_Pack(2, roles[address_roles[i]], value) : NULL;
        Py_XDECREF(value);
        if (pair == NULL) {
            goto error;
        }
        PyList_SET_ITEM(address_list, i, pair);
    }

    result = PyTuple_Pack(14, key, message_id, subject, subject_encoded ? Py_True : Py_False,
                          sent_at, date_header, in_reply_to, refs, address_list, kind,
                          check_vacation ? Py_True : Py_False, list_id, auto_submitted,
                          content_type);
    goto done;

rc_error:
    if (rc != FALLBACK) {
        goto error;
    }
fallback:
    result = Py_NewRef(Py_None);
    goto done;
error:
    result = NULL;
done:
    PyMem_Free(unfolded.data);
    Py_XDECREF(key);
    Py_XDECREF(message_id);
    Py_XDECREF(subject);
    Py_XDECREF(sent_at);
    Py_XDECREF(date_header);
    Py_XDECREF(in_reply_to);
    Py_XDECREF(refs);
    Py_XDECREF(address_list);
    Py_XDECREF(list_id);
    Py_XDECREF(auto_submitted);
    Py_XDECREF(content_type);
    return result;
#undef VALUE
#undef LENGTH
}

/* The class `message` builds (parse.ParsedMessage) and its slots, in field order. */
static PyTypeObject *message_type = NULL;
static PyObject *message_slots = NULL;

/* message(*values): a message_type with each slot set to its value, in slot order, without
 * its __init__: a frozen dataclass's __init__ sets each field through object.__setattr__, about
 * twenty thousand instructions for parse.ParsedMessage; this sets them the same way (the
 * generic setter, which a frozen class's __setattr__ only stands in front of) from C. */
static PyObject *cparse_message(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (message_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "inboxsync._cparse is not configured");
        return NULL;
    }
    if (nargs != PyTuple_GET_SIZE(message_slots)) {
        PyErr_Format(PyExc_TypeError, "message() takes %zd values (%zd given)",
                     PyTuple_GET_SIZE(message_slots), nargs);
        return NULL;
    }
    PyObject *message = message_type->tp_alloc(message_type, 0);
    if (message == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        if (PyObject_GenericSetAttr(message, PyTuple_GET_ITEM(message_slots, i), args[i]) < 0) {
            Py_DECREF(message);
            return NULL;
        }
    }
    return message;
}

/* ---------------------------------------------------------------- COPY lines */

/* The attribute names copy_lines reads, interned once. */
static PyObject *attr_message_id, *attr_subject, *attr_sent_at, *attr_date_header,
    *attr_from_email, *attr_from_name, *attr_in_reply_to, *attr_kind, *attr_list_id,
    *attr_auto_submitted, *attr_content_type, *attr_addresses, *attr_references, *attr_role,
    *attr_email, *attr_display_name;

#define NOT_HERE 3 /* a value copy_lines leaves to load.py (the whole batch then goes there) */

static int append(buffer *b, const char *data, Py_ssize_t len)
{
    if (buffer_reserve(b, len) < 0) {
        return -1;
    }
    memcpy(b->data + b->len, data, (size_t)len);
    b->len += len;
    return 0;
}

/* The UTF-8 form of a str; NULL (and no error set) when it is not a str or has none, which
 * copy_lines leaves to load.py. */
static const char *utf8_of(PyObject *value, Py_ssize_t *len)
{
    if (!PyUnicode_Check(value)) {
        return NULL;
    }
    const char *utf8 = PyUnicode_AsUTF8AndSize(value, len);
    if (utf8 == NULL) {
        PyErr_Clear();
    }
    return utf8;
}

/* A str as it stands (load.py's f-string does str() of it); NOT_HERE as for utf8_of. */
static int append_plain(buffer *b, PyObject *value)
{
    Py_ssize_t len;
    const char *utf8 = utf8_of(value, &len);
    return utf8 == NULL ? NOT_HERE : append(b, utf8, len);
}

/* The bytes COPY's text format escapes (backslash, tab, LF, CR) or load._text drops (NUL). */
static const unsigned char COPY_SPECIAL[256] = {
    ['\\'] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, ['\0'] = 1,
};

/* Write `value` as `width` digits at least (zero-padded), return the end. For 0 <= value. */
static char *digits_to(char *w, long long value, int width)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0);
    while (n < width) {
        tmp[n++] = '0';
    }
    while (n > 0) {
        *w++ = tmp[--n];
    }
    return w;
}

/* load._text: None as \N; backslash, tab, LF and CR escaped, NUL dropped. (Its isprintable()
 * test only saves work: a value without those five characters comes out as it is either way.)
 * A non-ASCII value holding one of them is left to load.py (NOT_HERE). */
static int append_text(buffer *b, PyObject *value)
{
    if (value == Py_None) {
        return append(b, "\\N", 2);
    }
    Py_ssize_t len;
    const char *utf8 = utf8_of(value, &len);
    if (utf8 == NULL) {
        return NOT_HERE;
    }
    Py_ssize_t special = -1;
    for (Py_ssize_t i = 0; i < len; i++) {
        if (COPY_SPECIAL[(unsigned char)utf8[i]]) {
            special = i;
            break;
        }
    }
    if (special < 0) {
        return append(b, utf8, len);
    }
    if (!PyUnicode_IS_ASCII(value)) {
        return NOT_HERE;
    }
    if (buffer_reserve(b, 2 * len) < 0) {
        return -1;
    }
    char *w = b->data + b->len;
    for (Py_ssize_t i = 0; i < len; i++) {
        char c = utf8[i];
        switch (c) {
        case '\\': *w++ = '\\'; *w++ = '\\'; break;
        case '\t': *w++ = '\\'; *w++ = 't'; break;
        case '\n': *w++ = '\\'; *w++ = 'n'; break;
        case '\r': *w++ = '\\'; *w++ = 'r'; break;
        case '\0': break;
        default: *w++ = c;
        }
    }
    b->len = w - b->data;
    return 0;
}

/* load._timestamp: None as \N, else isoformat(): written here for a UTC datetime without
 * microseconds (what the parse gives), asked of the datetime otherwise. */
static int append_timestamp(buffer *b, PyObject *value)
{
    if (value == Py_None) {
        return append(b, "\\N", 2);
    }
    if (PyDateTime_CheckExact(value) && PyDateTime_DATE_GET_MICROSECOND(value) == 0 &&
        PyDateTime_DATE_GET_TZINFO(value) == PyDateTime_TimeZone_UTC) {
        char text[40], *w = text;
        w = digits_to(w, PyDateTime_GET_YEAR(value), 4);
        *w++ = '-';
        w = digits_to(w, PyDateTime_GET_MONTH(value), 2);
        *w++ = '-';
        w = digits_to(w, PyDateTime_GET_DAY(value), 2);
        *w++ = 'T';
        w = digits_to(w, PyDateTime_DATE_GET_HOUR(value), 2);
        *w++ = ':';
        w = digits_to(w, PyDateTime_DATE_GET_MINUTE(value), 2);
        *w++ = ':';
        w = digits_to(w, PyDateTime_DATE_GET_SECOND(value), 2);
        memcpy(w, "+00:00", 6);
        return append(b, text, w + 6 - text);
    }
    PyObject *text = PyObject_CallMethod(value, "isoformat", NULL);
    if (text == NULL) {
        return -1;
    }
    int rc = append_plain(b, text);
    Py_DECREF(text);
    return rc;
}

/* The value of `key` in `mapping`, or KeyError as load.py's mapping[key] raises. */
static PyObject *lookup(PyObject *mapping, PyObject *key)
{
    PyObject *value = PyDict_GetItemWithError(mapping, key);
    if (value == NULL && !PyErr_Occurred()) {
        PyErr_SetObject(PyExc_KeyError, key);
    }
    return value;
}

/* Append an attribute of `obj` through `write`; returns its status. */
static int append_attr(buffer *b, PyObject *obj, PyObject *name,
                       int (*write)(buffer *, PyObject *))
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL) {
        return -1;
    }
    int rc = write(b, value);
    Py_DECREF(value);
    return rc;
}

static int append_int(buffer *b, Py_ssize_t n)
{
    char text[24];
    return append(b, text, digits_to(text, n, 1) - text);
}

/* One message's lines: its stg_messages line into out[0], its addresses' into out[1], its
 * references' into out[2]. */
static int message_lines(buffer out[3], PyObject *key, PyObject *m, PyObject *directions,
                         PyObject *gm_thrids, PyObject *thread_ids)
{
#define TRY(call)                                                                                  \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_) {                                                                                 \
            return rc_;                                                                            \
        }                                                                                          \
    } while (0)
    buffer *b = &out[0];
    TRY(append_plain(b, key));
    PyObject *const text_attrs[] = {attr_message_id, attr_subject};
    for (int i = 0; i < 2; i++) {
        TRY(append(b, "\t", 1));
        TRY(append_attr(b, m, text_attrs[i], append_text));
    }
    TRY(append(b, "\t", 1));
    TRY(append_attr(b, m, attr_sent_at, append_timestamp));
    PyObject *const more_attrs[] = {attr_date_header, attr_from_email, attr_from_name,
                                    attr_in_reply_to};
    for (int i = 0; i < 4; i++) {
        TRY(append(b, "\t", 1));
        TRY(append_attr(b, m, more_attrs[i], append_text));
    }
    TRY(append(b, "\t", 1));
    TRY(append_attr(b, m, attr_kind, append_plain));
    TRY(append(b, "\t", 1));
    PyObject *direction = lookup(directions, key);
    if (direction == NULL) {
        return -1;
    }
    TRY(append_plain(b, direction));
    PyObject *const last_attrs[] = {attr_list_id, attr_auto_submitted, attr_content_type};
    for (int i = 0; i < 3; i++) {
        TRY(append(b, "\t", 1));
        TRY(append_attr(b, m, last_attrs[i], append_text));
    }
    TRY(append(b, "\t", 1));
    PyObject *thrid = PyDict_GetItemWithError(gm_thrids, key);
    if (thrid == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (thrid == NULL || thrid == Py_None) {
        TRY(append(b, "\\N", 2));
    } else {
        PyObject *text = PyObject_Str(thrid);
        if (text == NULL) {
            return -1;
        }
        int rc = append_plain(b, text);
        Py_DECREF(text);
        TRY(rc);
    }
    TRY(append(b, "\t", 1));
    PyObject *thread = lookup(thread_ids, key);
    if (thread == NULL) {
        return -1;
    }
    TRY(append_plain(b, thread));
    TRY(append(b, "\n", 1));

    PyObject *addresses = PyObject_GetAttr(m, attr_addresses);
    if (addresses == NULL) {
        return -1;
    }
    PyObject *seq = PySequence_Fast(addresses, "addresses must be a sequence");
    Py_DECREF(addresses);
    if (seq == NULL) {
        return -1;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq) && rc == 0; i++) {
        PyObject *a = PySequence_Fast_GET_ITEM(seq, i);
        b = &out[1];
        if ((rc = append_plain(b, key)) || (rc = append(b, "\t", 1)) ||
            (rc = append_attr(b, a, attr_role, append_plain)) || (rc = append(b, "\t", 1)) ||
            (rc = append_attr(b, a, attr_email, append_text)) || (rc = append(b, "\t", 1)) ||
            (rc = append_attr(b, a, attr_display_name, append_text)) ||
            (rc = append(b, "\t", 1)) || (rc = append_int(b, i)) || (rc = append(b, "\n", 1))) {
            break;
        }
    }
    Py_DECREF(seq);
    TRY(rc);

    PyObject *refs = PyObject_GetAttr(m, attr_references);
    if (refs == NULL) {
        return -1;
    }
    seq = PySequence_Fast(refs, "references must be a sequence");
    Py_DECREF(refs);
    if (seq == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq) && rc == 0; i++) {
        b = &out[2];
        if ((rc = append_plain(b, key)) || (rc = append(b, "\t", 1)) || (rc = append_int(b, i)) ||
            (rc = append(b, "\t", 1)) ||
            (rc = append_text(b, PySequence_Fast_GET_ITEM(seq, i))) ||
            (rc = append(b, "\n", 1))) {
            break;
        }
    }
    Py_DECREF(seq);
    return rc;
#undef TRY
}

/* copy_lines(messages, directions, gm_thrids, thread_ids): load._message_lines,
 * _address_lines and _reference_lines of a batch at once, or None when a value needs load.py
 * (a non-ASCII value to escape, a value that is not a str). */
static PyObject *cparse_copy_lines(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4 || !PyDict_Check(args[0]) || !PyDict_Check(args[1]) ||
        !PyDict_Check(args[2]) || !PyDict_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "copy_lines(messages, directions, gm_thrids, thread_ids) takes 4 dicts");
        return NULL;
    }
    buffer out[3] = {{NULL, 0, 0}, {NULL, 0, 0}, {NULL, 0, 0}};
    PyObject *result = NULL;
    Py_ssize_t pos = 0;
    PyObject *key, *m;
    int rc = 0;
    while (rc == 0 && PyDict_Next(args[0], &pos, &key, &m)) {
        Py_INCREF(key);
        Py_INCREF(m);
        rc = message_lines(out, key, m, args[1], args[2], args[3]);
        Py_DECREF(key);
        Py_DECREF(m);
    }
    if (rc == NOT_HERE) {
        result = Py_NewRef(Py_None);
    } else if (rc == 0) {
        PyObject *texts[3] = {NULL, NULL, NULL};
        int ok = 1;
        for (int i = 0; i < 3 && ok; i++) {
            texts[i] = PyUnicode_DecodeUTF8(out[i].data ? out[i].data : "", out[i].len, NULL);
            ok = texts[i] != NULL;
        }
        if (ok) {
            result = PyTuple_Pack(3, texts[0], texts[1], texts[2]);
        }
        for (int i = 0; i < 3; i++) {
            Py_XDECREF(texts[i]);
        }
    }
    for (int i = 0; i < 3; i++) {
        PyMem_Free(out[i].data);
    }
    return result;
}

static PyObject *cparse_configure(PyObject *module, PyObject *args, PyObject *kwargs)
{
    (void)module;
    static char *keywords[] = {"max_subject",    "max_short_text", "max_message_id",
                               "max_references", "message_type",   NULL};
    Py_ssize_t subject, short_text, message_id, refs;
    PyObject *type;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$nnnnO!", keywords, &subject, &short_text,
                                     &message_id, &refs, &PyType_Type, &type)) {
        return NULL;
    }
    if (subject < 1 || short_text < 1 || message_id < 1 || refs < 1) {
        PyErr_SetString(PyExc_ValueError, "limits must be positive");
        return NULL;
    }
    PyObject *slots = PyObject_GetAttrString(type, "__slots__");
    if (slots == NULL) {
        return NULL;
    }
    if (!PyTuple_Check(slots)) {
        Py_DECREF(slots);
        PyErr_SetString(PyExc_TypeError, "message_type must have a tuple of __slots__");
        return NULL;
    }
    Py_XSETREF(message_slots, slots);
    Py_XSETREF(message_type, (PyTypeObject *)Py_NewRef(type));
    max_subject = subject;
    max_short_text = short_text;
    max_message_id = message_id;
    max_references = refs;
    Py_RETURN_NONE;
}

static PyMethodDef cparse_methods[] = {
    {"parse", cparse_parse, METH_O,
     "parse(raw: bytes) -> tuple | None: the parts of a message row, or None (see the source)."},
    {"copy_lines", (PyCFunction)(void (*)(void))cparse_copy_lines, METH_FASTCALL,
     "copy_lines(messages, directions, gm_thrids, thread_ids) -> (messages, addresses, "
     "references) COPY text, or None: load.py's line builders for a batch."},
    {"message", (PyCFunction)(void (*)(void))cparse_message, METH_FASTCALL,
     "message(*values): a message_type with its slots set to the values, in slot order."},
    {"configure", (PyCFunction)(void (*)(void))cparse_configure, METH_VARARGS | METH_KEYWORDS,
     "configure(*, max_subject, max_short_text, max_message_id, max_references, message_type): "
     "parse.py's limits and its message class."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef cparse_module = {
    PyModuleDef_HEAD_INIT, "inboxsync._cparse",
    "The parse's fast path in C; inboxsync.parse is the reference and the fallback.", -1,
    cparse_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__cparse(void)
{
    for (int f = 0; f < F_COUNT; f++) {
        field_lengths[f] = (Py_ssize_t)strlen(FIELD_NAMES[f]);
    }
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) {
        return NULL;
    }
    for (int i = 0; i < ADDRESS_FIELDS; i++) {
        if ((roles[i] = PyUnicode_InternFromString(ROLE_NAMES[i])) == NULL) {
            return NULL;
        }
    }
    if ((kind_auto_reply = PyUnicode_InternFromString("auto_reply")) == NULL ||
        (kind_list = PyUnicode_InternFromString("list")) == NULL ||
        (kind_bulk = PyUnicode_InternFromString("bulk")) == NULL ||
        (kind_human = PyUnicode_InternFromString("human")) == NULL) {
        return NULL;
    }
    struct {
        PyObject **slot;
        const char *name;
    } attrs[] = {
        {&attr_message_id, "message_id"}, {&attr_subject, "subject"},
        {&attr_sent_at, "sent_at"}, {&attr_date_header, "date_header"},
        {&attr_from_email, "from_email"}, {&attr_from_name, "from_name"},
        {&attr_in_reply_to, "in_reply_to"}, {&attr_kind, "kind"}, {&attr_list_id, "list_id"},
        {&attr_auto_submitted, "auto_submitted"}, {&attr_content_type, "content_type"},
        {&attr_addresses, "addresses"}, {&attr_references, "references"}, {&attr_role, "role"},
        {&attr_email, "email"}, {&attr_display_name, "display_name"},
    };
    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
        if ((*attrs[i].slot = PyUnicode_InternFromString(attrs[i].name)) == NULL) {
            return NULL;
        }
    }
    PyObject *module = PyModule_Create(&cparse_module);
    if (module == NULL) {
        return NULL;
    }
#ifdef INBOXSYNC_CPARSE_SOURCE
    if (PyModule_AddStringConstant(module, "SOURCE_SHA256", INBOXSYNC_CPARSE_SOURCE) < 0) {
        Py_DECREF(module);
        return NULL;
    }
#endif
    return module;
}
