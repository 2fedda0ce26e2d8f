/* The FETCH reader's fast path in C: `scan(buffer, pos, seen, out)` reads, from the bytes of a
 * UID FETCH answer, the untagged answers of the one shape Dovecot gives `fetch_headers`, and
 * builds each one's FetchedCopy.
 *
 * inboxsync.imap_lines.read_usual_fetches feeds it the answer as it arrives and hands
 * everything from the first other line on (the tagged result, an unsolicited EXISTS, an answer
 * of another shape, Gmail's items) to imaplib's own reading and inboxsync.imap's reader, which
 * stay the reference: tests/unit/test_fetch_reader.py and test_cfetch.py hold the two paths to
 * the same copies. So this file takes only the answers it reads exactly as that Python code
 * does, and stops at the first sign of anything else. The shape, byte for byte:
 *
 *   * <seq> FETCH (UID <uid> FLAGS (<flags>) INTERNALDATE "<date>" RFC822.SIZE <size>
 *   BODY[HEADER.FIELDS (<names>)] {<n>}CRLF <n bytes> )CRLF
 *
 * (one line up to the literal), the flags ASCII atoms (imap._read_flags's rule: no digits-only
 * keyword, no NIL), the date in imap._INTERNALDATE's form and valid, each UID once per command.
 * A copy's flags drop \Recent and are sorted, its date carries the zone imap._zone gives, its
 * Gmail fields are None (as imap._flags, imap._internal_date and fetch_headers make them).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <string.h>

/* Longest line or literal waited for: past these the Python reading takes over (and applies
 * imaplib's own limits). An answer of the usual shape is well under a kilobyte of line. */
#define MAX_LINE 65536
#define MAX_LITERAL (64 * 1024 * 1024)

static PyTypeObject *copy_type = NULL; /* imap.FetchedCopy */
static PyObject *copy_slots = NULL;    /* its __slots__, in field order */
static PyObject *zone_of = NULL;       /* imap._zone: b"+0200" -> tzinfo */

/* The last zone asked for: a folder's dates mostly share one or two. */
static char last_zone_key[5];
static PyObject *last_zone = NULL;

static const char *const MONTHS[12] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* Skip `literal` at p; the new position or NULL. */
static const char *expect(const char *p, const char *end, const char *literal)
{
    size_t n = strlen(literal);
    if ((size_t)(end - p) < n || memcmp(p, literal, n) != 0) {
        return NULL;
    }
    return p + n;
}

/* An unsigned number of at most `max_digits` digits; `strict`: no leading zero but "0" itself
 * (the answer's (0|[1-9][0-9]*)). The new position or NULL. */
static const char *number(const char *p, const char *end, int max_digits, int strict,
                          long long *out)
{
    const char *start = p;
    long long value = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (p - start == max_digits) {
            return NULL;
        }
        value = value * 10 + (*p - '0');
        p++;
    }
    if (p == start || (strict && *start == '0' && p - start > 1)) {
        return NULL;
    }
    *out = value;
    return p;
}

static int digit2(const char *p)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9') {
        return -1;
    }
    return (p[0] - '0') * 10 + (p[1] - '0');
}

static PyObject *zone(const char *key)
{
    if (last_zone != NULL && memcmp(key, last_zone_key, 5) == 0) {
        return Py_NewRef(last_zone);
    }
    PyObject *tz = PyObject_CallFunction(zone_of, "y#", key, (Py_ssize_t)5);
    if (tz == NULL) {
        return NULL;
    }
    memcpy(last_zone_key, key, 5);
    Py_XSETREF(last_zone, Py_NewRef(tz));
    return tz;
}

/* INTERNALDATE in imap._INTERNALDATE's form, as a datetime; NULL without an exception when the
 * text has another form or names no valid time (the Python reading then gives its answer). */
static PyObject *internal_date(const char *p, Py_ssize_t len)
{
    int day;
    /* ( ?[0-9]|[0-9]{2})-: "5-", " 5-", "05-", "15-" */
    if (len >= 2 && p[0] >= '0' && p[0] <= '9' && p[1] == '-') {
        day = p[0] - '0';
        p += 1;
        len -= 1;
    }
    else if (len >= 3 && (p[0] == ' ' || (p[0] >= '0' && p[0] <= '9')) && p[1] >= '0' &&
             p[1] <= '9' && p[2] == '-') {
        day = p[0] == ' ' ? p[1] - '0' : (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
        len -= 2;
    }
    else {
        return NULL;
    }
    /* -Mon-YYYY HH:MM:SS +ZZZZ: 24 bytes */
    if (len != 24 || p[0] != '-' || p[4] != '-' || p[9] != ' ' || p[12] != ':' ||
        p[15] != ':' || p[18] != ' ' || (p[19] != '+' && p[19] != '-')) {
        return NULL;
    }
    int month = 0;
    for (int m = 0; m < 12; m++) {
        if (memcmp(p + 1, MONTHS[m], 3) == 0) {
            month = m + 1;
            break;
        }
    }
    int y1 = digit2(p + 5), y2 = digit2(p + 7);
    int hour = digit2(p + 10), minute = digit2(p + 13), second = digit2(p + 16);
    if (month == 0 || y1 < 10 || y2 < 0 || hour < 0 || minute < 0 || second < 0 ||
        digit2(p + 20) < 0 || digit2(p + 22) < 0) {
        return NULL; /* y1 < 10: the year's first digit is 0 */
    }
    PyObject *tz = zone(p + 19);
    if (tz == NULL) {
        return NULL;
    }
    PyObject *value = PyDateTimeAPI->DateTime_FromDateAndTime(
        y1 * 100 + y2, month, day, hour, minute, second, 0, tz, PyDateTimeAPI->DateTimeType);
    Py_DECREF(tz);
    if (value == NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyErr_Clear(); /* 31-Feb, 24:00, second 60: the Python reading's answer */
    }
    return value;
}

/* An atom flag, by imap._FLAG (\\?[^\x00-\x20\x7f()"[]{}%*\\]+), ASCII only (the reader
 * decodes others with replacement: its work), not a number or NIL (IMAPClient makes those an
 * int or None). */
static int usual_flag(const char *p, Py_ssize_t len)
{
    Py_ssize_t i = 0;
    if (len > 0 && p[0] == '\\') {
        i = 1;
    }
    if (i == len) {
        return 0;
    }
    int digits = 1;
    for (; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || strchr("()\"[]{}%*\\", c) != NULL) {
            return 0;
        }
        digits &= c >= '0' && c <= '9';
    }
    return !(digits && p[0] != '\\') && !(len == 3 && memcmp(p, "NIL", 3) == 0);
}

static int is_recent(const char *p, Py_ssize_t len)
{
    static const char recent[] = "\\recent";
    if (len != 7) {
        return 0;
    }
    for (int i = 0; i < 7; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c + 32);
        }
        if (c != recent[i]) {
            return 0;
        }
    }
    return 1;
}

/* The flags of "(...)" as imap._flags gives them: str, \Recent dropped, sorted. NULL without an
 * exception when a flag is not usual. */
#define MAX_FLAGS 64
static PyObject *flags_of(const char *p, Py_ssize_t len)
{
    const char *start[MAX_FLAGS];
    Py_ssize_t size[MAX_FLAGS];
    int count = 0;
    const char *end = p + len;
    while (len > 0 && p < end) {
        const char *space = memchr(p, ' ', (size_t)(end - p));
        const char *stop = space ? space : end;
        if (!usual_flag(p, stop - p) || count == MAX_FLAGS || (space && space + 1 == end)) {
            return NULL;
        }
        if (!is_recent(p, stop - p)) {
            /* insertion sort by bytes: for ASCII, the order of sorted() on str */
            int i = count++;
            while (i > 0) {
                Py_ssize_t n = size[i - 1] < stop - p ? size[i - 1] : stop - p;
                int c = memcmp(start[i - 1], p, (size_t)n);
                if (c < 0 || (c == 0 && size[i - 1] <= stop - p)) {
                    break;
                }
                start[i] = start[i - 1];
                size[i] = size[i - 1];
                i--;
            }
            start[i] = p;
            size[i] = stop - p;
        }
        p = space ? space + 1 : end;
    }
    PyObject *flags = PyTuple_New(count);
    if (flags == NULL) {
        return NULL;
    }
    for (int i = 0; i < count; i++) {
        PyObject *flag = PyUnicode_FromStringAndSize(start[i], size[i]);
        if (flag == NULL) {
            Py_DECREF(flags);
            return NULL;
        }
        PyTuple_SET_ITEM(flags, i, flag);
    }
    return flags;
}

/* A FetchedCopy with its slots set in field order (the generic setter: the class is frozen). */
static PyObject *new_copy(PyObject *const *values, Py_ssize_t count)
{
    if (count != PyTuple_GET_SIZE(copy_slots)) {
        PyErr_SetString(PyExc_TypeError, "FetchedCopy's fields changed: rebuild _cfetch");
        return NULL;
    }
    PyObject *copy = copy_type->tp_alloc(copy_type, 0);
    if (copy == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (PyObject_GenericSetAttr(copy, PyTuple_GET_ITEM(copy_slots, i), values[i]) < 0) {
            Py_DECREF(copy);
            return NULL;
        }
    }
    return copy;
}

enum { NEED_MORE = 0, STOPPED = 1, READ = 2, FAILED = -1 };

/* One answer at p: READ (its copy appended, *next past it), NEED_MORE, STOPPED or FAILED. */
static int one_answer(const char *p, const char *end, PyObject *seen, PyObject *out,
                      const char **next)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL) {
        return end - p > MAX_LINE ? STOPPED : NEED_MORE;
    }
    if (nl == p || nl[-1] != '\r') {
        return STOPPED;
    }
    const char *eol = nl - 1; /* the line without its CRLF */
    long long seq, uid, size, length;
    const char *q = expect(p, eol, "* ");
    if (q == NULL || (q = number(q, eol, 18, 0, &seq)) == NULL ||
        (q = expect(q, eol, " FETCH (UID ")) == NULL || (q = number(q, eol, 18, 1, &uid)) == NULL ||
        (q = expect(q, eol, " FLAGS (")) == NULL) {
        return STOPPED;
    }
    const char *flags_start = q;
    while (q < eol && *q != ')' && *q != '(' && *q != '"') {
        q++;
    }
    const char *flags_end = q;
    if ((q = expect(q, eol, ") INTERNALDATE \"")) == NULL) {
        return STOPPED;
    }
    const char *date_start = q;
    while (q < eol && *q != '"' && *q != '\\') {
        q++;
    }
    const char *date_end = q;
    if ((q = expect(q, eol, "\" RFC822.SIZE ")) == NULL ||
        (q = number(q, eol, 18, 1, &size)) == NULL ||
        (q = expect(q, eol, " BODY[HEADER.FIELDS (")) == NULL) {
        return STOPPED;
    }
    const char *bracket = memchr(q, ']', (size_t)(eol - q));
    if (bracket == NULL || bracket[-1] != ')' || bracket - 1 < q) {
        return STOPPED;
    }
    if ((q = expect(bracket + 1, eol, " {")) == NULL || (q = number(q, eol, 9, 0, &length)) == NULL ||
        (q = expect(q, eol, "}")) == NULL || q != eol) {
        return STOPPED;
    }
    if (length > MAX_LITERAL) {
        return STOPPED;
    }
    const char *literal = nl + 1;
    if (end - literal < length + 3) {
        return NEED_MORE;
    }
    if (memcmp(literal + length, ")\r\n", 3) != 0) {
        return STOPPED;
    }
    PyObject *uid_obj = PyLong_FromLongLong(uid);
    if (uid_obj == NULL) {
        return FAILED;
    }
    int known = PySet_Contains(seen, uid_obj);
    if (known != 0) {
        Py_DECREF(uid_obj);
        return known < 0 ? FAILED : STOPPED; /* a second answer: the Python reading merges */
    }
    PyObject *flags = flags_of(flags_start, flags_end - flags_start);
    if (flags == NULL) {
        Py_DECREF(uid_obj);
        return PyErr_Occurred() ? FAILED : STOPPED;
    }
    PyObject *date = internal_date(date_start, date_end - date_start);
    if (date == NULL) {
        Py_DECREF(uid_obj);
        Py_DECREF(flags);
        return PyErr_Occurred() ? FAILED : STOPPED;
    }
    PyObject *header = PyBytes_FromStringAndSize(literal, (Py_ssize_t)length);
    PyObject *size_obj = PyLong_FromLongLong(size);
    int status = FAILED;
    if (header != NULL && size_obj != NULL) {
        PyObject *values[8] = {uid_obj, header, flags, date, size_obj, Py_None, Py_None, Py_None};
        PyObject *copy = new_copy(values, 8);
        if (copy != NULL) {
            if (PySet_Add(seen, uid_obj) == 0 && PyList_Append(out, copy) == 0) {
                *next = literal + length + 3;
                status = READ;
            }
            Py_DECREF(copy);
        }
    }
    Py_DECREF(uid_obj);
    Py_DECREF(flags);
    Py_DECREF(date);
    Py_XDECREF(header);
    Py_XDECREF(size_obj);
    return status;
}

/* scan(buffer, pos, seen, out) -> (pos, stopped) */
static PyObject *cfetch_scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4 || !PySet_Check(args[2]) || !PyList_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "scan(buffer, pos: int, seen: set, out: list)");
        return NULL;
    }
    if (copy_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "inboxsync._cfetch is not configured");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (pos < 0 || pos > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pos outside the buffer");
        return NULL;
    }
    const char *base = view.buf, *end = base + view.len, *p = base + pos;
    int status;
    for (;;) {
        const char *next = p;
        status = one_answer(p, end, args[2], args[3], &next);
        if (status != READ) {
            break;
        }
        p = next;
    }
    PyBuffer_Release(&view);
    if (status == FAILED) {
        return NULL;
    }
    return Py_BuildValue("nO", (Py_ssize_t)(p - base), status == STOPPED ? Py_True : Py_False);
}

static PyObject *cfetch_configure(PyObject *module, PyObject *args, PyObject *kwargs)
{
    (void)module;
    static char *keywords[] = {"copy_type", "zone", NULL};
    PyObject *type, *zone_callable;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$O!O", keywords, &PyType_Type, &type,
                                     &zone_callable)) {
        return NULL;
    }
    PyObject *slots = PyObject_GetAttrString(type, "__slots__");
    if (slots == NULL) {
        return NULL;
    }
    if (!PyTuple_Check(slots) || PyTuple_GET_SIZE(slots) != 8) {
        Py_DECREF(slots);
        PyErr_SetString(PyExc_TypeError, "copy_type must have a tuple of 8 __slots__");
        return NULL;
    }
    Py_XSETREF(copy_slots, slots);
    Py_XSETREF(copy_type, (PyTypeObject *)Py_NewRef(type));
    Py_XSETREF(zone_of, Py_NewRef(zone_callable));
    Py_CLEAR(last_zone);
    Py_RETURN_NONE;
}

static PyMethodDef cfetch_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))cfetch_scan, METH_FASTCALL,
     "scan(buffer, pos, seen, out) -> (pos, stopped): append a FetchedCopy to out for each "
     "answer of the usual shape from pos on; stopped: the bytes at pos are something else "
     "(else more bytes are needed)."},
    {"configure", (PyCFunction)(void (*)(void))cfetch_configure, METH_VARARGS | METH_KEYWORDS,
     "configure(*, copy_type, zone): imap.FetchedCopy and imap._zone."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef cfetch_module = {
    PyModuleDef_HEAD_INIT, "inboxsync._cfetch",
    "The FETCH reader's fast path in C; inboxsync.imap's reader is the reference and the rest.",
    -1, cfetch_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__cfetch(void)
{
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&cfetch_module);
    if (module == NULL) {
        return NULL;
    }
#ifdef INBOXSYNC_CFETCH_SOURCE
    if (PyModule_AddStringConstant(module, "SOURCE_SHA256", INBOXSYNC_CFETCH_SOURCE) < 0) {
        Py_DECREF(module);
        return NULL;
    }
#endif
    return module;
}
