/* cls_shipper._wire: the two hot walks over CLS LogGroupList protobuf bytes (spec §5.3).
 *
 *   scan_log_group_list(buf) -> (logs, groups)
 *       The ingest validation of ingest/decode.py (check_protobuf) in one pass: wire format,
 *       no field the schema does not declare, UTF-8 of every string field, the range of
 *       Log.time, the CLS limits and reserved keys. Raises ScanError(kind, message) with the
 *       Python validator's kind and message.
 *
 *   encode_json_lines(buf, client_ip, meta_fields, enable_tag) -> (data, ends, group_ends)
 *       One stored chunk straight to JSON lines, byte for byte what formats/records.py +
 *       formats/jsonlines.py write for JsonType 0.
 *
 * Both mirror what upb (the protobuf runtime the Python paths use) accepts, and both raise
 * Unsupported for the rare inputs whose Python outcome they do not reproduce (deprecated
 * protobuf groups, invalid UTF-8 in map keys); the caller then runs the Python path, so the
 * decision is always the Python one.
 *
 * The CLS limits and the time units come from Python: ingest/native.py calls configure() once
 * on import with the values of ingest/schema.py and timefmt.py, and both walks refuse to run
 * before. The protobuf tags stay compile-time constants, because the walks switch on them;
 * configure() checks them against the schema's field table instead.
 *
 * Every read is bounds-checked against the end of the enclosing message; no input can make
 * this code read outside the buffer. Neither walk touches Python objects, so both run without
 * the GIL. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Outcomes of the C walks, turned into Python exceptions once the GIL is back. */
enum {
    WIRE_OK = 0,
    WIRE_MALFORMED, /* not a LogGroupList upb would parse (or a proto3 string not UTF-8) */
    WIRE_GROUP,     /* a deprecated group (wire type 3): left to the Python path */
    WIRE_BAD_KEY,   /* a map key that is not UTF-8: Python raises UnicodeDecodeError */
    WIRE_NOMEM,
};

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

static PyObject *ScanError;
static PyObject *Unsupported;

/* --- wire reading ---------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Reader;

typedef struct {
    const uint8_t *p;
    size_t n;
} Span;

static inline Reader reader_of(Span s)
{
    return (Reader){s.p, s.p + s.n};
}

/* --- configuration: the module's state ------------------------------------------------- */

/* What configure() was handed. Set once per module object, read-only afterwards: the walks
 * read it without the GIL. */
typedef struct {
    int configured;
    uint64_t max_logs_per_group;
    uint64_t max_value_bytes;
    uint64_t max_group_value_bytes;
    int64_t time_ms_low, time_ms_high; /* Log.time below: seconds; from high on: microseconds */
    int64_t log_time_min, log_time_max; /* Log.time accepted at ingest, clamped to when shipped */
    Span *allowed_keys; /* underscore content keys accepted: one block, the keys' bytes after */
    size_t allowed_count;
} Config;

static PyObject *not_configured(void)
{
    PyErr_SetString(PyExc_RuntimeError,
                    "cls_shipper._wire is not configured: import it from "
                    "cls_shipper.ingest.native, which hands it the CLS limits");
    return NULL;
}

/* next_field runs for every field and read_entry for every key/value pair; at -O2 GCC keeps
 * them out of line, which cost the scan about 30% (and read_entry's `validate` would stay a
 * runtime test). */
#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/* Every level of both walks gives up on the first failure and hands its code up as is: the
 * code decides which exception Python sees. */
#define TRY(expr)                                                                          \
    do {                                                                                   \
        int rc_ = (expr);                                                                  \
        if (rc_ != WIRE_OK)                                                                \
            return rc_;                                                                    \
    } while (0)

/* A field number and wire type as one value, so that one compare (or one switch case)
 * matches both: a declared field sent with another wire type is an unknown field to upb. */
#define TAG(field, wire_type) ((uint32_t)(field) << 3 | (uint32_t)(wire_type))

/* The tags the walks read (ingest/schema.py's MESSAGES; configure() checks every one). */
enum {
    LIST_GROUP = TAG(1, WT_LEN),        /* LogGroupList.logGroupList */
    GROUP_LOG = TAG(1, WT_LEN),         /* LogGroup.logs */
    GROUP_CONTEXT_FLOW = TAG(2, WT_LEN),
    GROUP_FILENAME = TAG(3, WT_LEN),
    GROUP_SOURCE = TAG(4, WT_LEN),
    GROUP_LOG_TAG = TAG(5, WT_LEN),     /* LogGroup.logTags */
    GROUP_HOSTNAME = TAG(6, WT_LEN),
    LOG_TIME = TAG(1, WT_VARINT),
    LOG_CONTENT = TAG(2, WT_LEN),       /* Log.contents */
    LOG_COLLECT_TIME = TAG(3, WT_VARINT), /* skipped like any unread field */
    PAIR_KEY = TAG(1, WT_LEN),          /* Log.Content and LogTag alike */
    PAIR_VALUE = TAG(2, WT_LEN),
};

static const struct {
    const char *name; /* "Message.field", as ingest/schema.py's wire_tags() names it */
    uint32_t tag;
} SCHEMA_TAGS[] = {
    {"LogGroupList.logGroupList", LIST_GROUP},
    {"LogGroup.logs", GROUP_LOG},
    {"LogGroup.contextFlow", GROUP_CONTEXT_FLOW},
    {"LogGroup.filename", GROUP_FILENAME},
    {"LogGroup.source", GROUP_SOURCE},
    {"LogGroup.logTags", GROUP_LOG_TAG},
    {"LogGroup.hostname", GROUP_HOSTNAME},
    {"Log.time", LOG_TIME},
    {"Log.contents", LOG_CONTENT},
    {"Log.collectTime", LOG_COLLECT_TIME},
    {"Log.Content.key", PAIR_KEY},
    {"Log.Content.value", PAIR_VALUE},
    {"LogTag.key", PAIR_KEY},
    {"LogTag.value", PAIR_VALUE},
};
#define SCHEMA_TAG_COUNT (sizeof SCHEMA_TAGS / sizeof SCHEMA_TAGS[0])

/* A varint of at most `max_bytes` bytes. upb's limits: 10 bytes for values, 5 for tags and
 * lengths; it ignores bits beyond 64 in a 10th byte, as the unsigned shift here does. */
static inline int read_varint(Reader *r, int max_bytes, uint64_t *out)
{
    const uint8_t *p = r->p;
    uint64_t v = 0;
    for (int i = 0; i < max_bytes; i++) {
        if (p >= r->end)
            return WIRE_MALFORMED;
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (b < 0x80) {
            r->p = p;
            *out = v;
            return WIRE_OK;
        }
    }
    return WIRE_MALFORMED;
}

static inline int read_tag(Reader *r, uint32_t *tag)
{
    uint64_t v;
    if (r->p < r->end && *r->p < 0x80) { /* the usual one-byte tag */
        v = *r->p++;
    } else {
        TRY(read_varint(r, 5, &v));
        if (v > UINT32_MAX)
            return WIRE_MALFORMED;
    }
    *tag = (uint32_t)v;
    return v >> 3 == 0 ? WIRE_MALFORMED : WIRE_OK; /* field number 0 */
}

/* A length-delimited payload: it lies inside the reader's message. */
static inline int read_bytes(Reader *r, Span *s)
{
    uint64_t len;
    if (r->p < r->end && *r->p < 0x80) {
        len = *r->p++;
    } else {
        TRY(read_varint(r, 5, &len));
    }
    if (len >= INT32_MAX || len > (uint64_t)(r->end - r->p))
        return WIRE_MALFORMED;
    s->p = r->p;
    s->n = (size_t)len;
    r->p += len;
    return WIRE_OK;
}

static inline int read_fixed(Reader *r, size_t n)
{
    if ((size_t)(r->end - r->p) < n)
        return WIRE_MALFORMED;
    r->p += n;
    return WIRE_OK;
}

/* One field with its payload read, whatever its number: a caller matches `tag` against the
 * fields it wants and lets the rest go, so a field the schema does not declare (or declares
 * with another wire type) is checked exactly like a declared one, as upb does. Callers
 * zero-initialise it: GCC cannot see that `value` and `bytes` are only read once set, and
 * warns. */
typedef struct {
    uint32_t tag;   /* TAG(field, wire type) */
    uint64_t value; /* WT_VARINT */
    Span bytes;     /* WT_LEN */
} Field;

/* Tested in the order CLS messages use them, so the walks' usual fields take the first
 * branch. No call here: a Reader whose address escaped would live in memory. */
static ALWAYS_INLINE int next_field(Reader *r, Field *f)
{
    TRY(read_tag(r, &f->tag));
    int wire_type = (int)(f->tag & 7);
    if (wire_type == WT_LEN)
        return read_bytes(r, &f->bytes);
    if (wire_type == WT_VARINT)
        return read_varint(r, 10, &f->value);
    if (wire_type == WT_I64)
        return read_fixed(r, 8);
    if (wire_type == WT_I32)
        return read_fixed(r, 4);
    /* a group is left to Python; an end-group without a group, or wire types 6 and 7 */
    return wire_type == WT_SGROUP ? WIRE_GROUP : WIRE_MALFORMED;
}

/* --- UTF-8 ----------------------------------------------------------------------------- */

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* One sequence starting at s[0] >= 0x80 (Unicode Table 3-7). Returns 1 and its length if
 * well-formed; else 0 and the length of its maximal subpart, which CPython's "replace"
 * handler turns into one U+FFFD. */
static inline int utf8_seq(const uint8_t *s, size_t n, size_t *len)
{
    uint8_t c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c == 0xE0) {
        need = 2;
        lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
        need = 2;
    else if (c == 0xED) {
        need = 2;
        hi = 0x9F;
    } else if (c == 0xF0) {
        need = 3;
        lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3)
        need = 3;
    else if (c == 0xF4) {
        need = 3;
        hi = 0x8F;
    } else {
        *len = 1;
        return 0;
    }
    for (size_t k = 1; k <= need; k++) {
        if (k >= n || s[k] < lo || s[k] > hi) {
            *len = k;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    *len = need + 1;
    return 1;
}

static int utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i + 8 <= n) { /* ASCII runs, a word at a time */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & HIGHS)
                break;
            i += 8;
        }
        while (i < n && s[i] < 0x80)
            i++;
        if (i >= n)
            break;
        size_t len;
        if (!utf8_seq(s + i, n - i, &len))
            return 0;
        i += len;
    }
    return 1;
}

/* --- key/value entries ----------------------------------------------------------------- */

/* The scanner checks every string it meets, most of them short and ASCII: deciding those
 * here, without a call, spares the walk saving its registers around one. */
static inline int check_utf8(Span s)
{
    size_t i = 0;
    for (; i + 8 <= s.n; i += 8) {
        uint64_t w;
        memcpy(&w, s.p + i, 8);
        if (w & HIGHS)
            break;
    }
    while (i < s.n && s.p[i] < 0x80)
        i++;
    if (i == s.n)
        return WIRE_OK;
    return utf8_valid(s.p + i, s.n - i) ? WIRE_OK : WIRE_MALFORMED; /* from the first non-ASCII */
}

/* Log.Content and LogTag alike: key = 1, value = 2, a repeated one's last occurrence winning
 * (upb merges). `*unknown` is the tag of the entry's first other field, else 0: the scanner
 * refuses such an entry, and the encoder drops it, because shipping reads both as
 * map<string, string> (formats/records.py) and upb drops such an entry from a map. With
 * `validate`, every occurrence of key and value must be UTF-8, as upb requires of proto3
 * strings at ingest; the encoder checks keys only, and only of entries it keeps, since Python
 * decodes values with "replace". */
static ALWAYS_INLINE int read_entry(Span msg, int validate, Span *key, Span *value,
                                    uint32_t *unknown)
{
    Reader r = reader_of(msg);
    Field f = {0};
    *key = *value = (Span){NULL, 0};
    *unknown = 0;
    while (r.p < r.end) {
        TRY(next_field(&r, &f));
        if (f.tag == PAIR_KEY)
            *key = f.bytes;
        else if (f.tag == PAIR_VALUE)
            *value = f.bytes;
        else {
            if (*unknown == 0)
                *unknown = f.tag;
            continue;
        }
        if (validate)
            TRY(check_utf8(f.bytes));
    }
    return WIRE_OK;
}

/* --- scan_log_group_list --------------------------------------------------------------- */

typedef struct {
    Config cfg;
    uint64_t logs;
    Py_ssize_t groups;
    Py_ssize_t logs_err_group; /* first group above the logs limit, or -1 */
    uint64_t logs_err_count;
    Py_ssize_t value_err_group; /* first group breaking a value limit, or -1 */
    int value_err_is_total;
    uint64_t value_err_size;
    const uint8_t *value_err_key;
    size_t value_err_key_len;
    Py_ssize_t key_err_group; /* first reserved content key, or -1 */
    const uint8_t *key_err_key;
    size_t key_err_key_len;
    int unknown_in; /* where the first undeclared field is (UNKNOWN_IN_*), or UNKNOWN_NONE */
    uint32_t unknown_tag;
    Py_ssize_t unknown_group;
    uint64_t unknown_log;
    Py_ssize_t time_err_group; /* first log with a time out of range, or -1 */
    uint64_t time_err_log;
    int64_t time_err_value;
} Scan;

/* The message holding the first field the schema does not declare (the same field number
 * with another wire type included: upb keeps it as an unknown field). */
enum { UNKNOWN_NONE, UNKNOWN_IN_LIST, UNKNOWN_IN_GROUP, UNKNOWN_IN_LOG, UNKNOWN_IN_CONTENT,
       UNKNOWN_IN_TAG };

/* Wire order decides which unknown field is "first", as ingest/decode.py's walk does. */
static inline void note_unknown(Scan *sc, int in, uint32_t tag, uint64_t log)
{
    if (sc->unknown_in != UNKNOWN_NONE)
        return;
    sc->unknown_in = in;
    sc->unknown_tag = tag;
    sc->unknown_group = sc->groups;
    sc->unknown_log = log;
}

/* Per LogGroup: what the value limits need. */
typedef struct {
    uint64_t total;
    int value_err; /* a value above the value limit was seen in this group */
    uint64_t value_err_size;
    const uint8_t *value_err_key;
    size_t value_err_key_len;
} GroupScan;

static int allowed_key(const Config *cfg, Span key)
{
    for (size_t i = 0; i < cfg->allowed_count; i++)
        if (cfg->allowed_keys[i].n == key.n && memcmp(cfg->allowed_keys[i].p, key.p, key.n) == 0)
            return 1;
    return 0;
}

static int scan_content(Span msg, Scan *sc, GroupScan *g, uint64_t log)
{
    Span key, value;
    uint32_t unknown;
    TRY(read_entry(msg, 1, &key, &value, &unknown));
    if (unknown)
        note_unknown(sc, UNKNOWN_IN_CONTENT, unknown, log);
    if (value.n > sc->cfg.max_value_bytes && !g->value_err) {
        g->value_err = 1;
        g->value_err_size = value.n;
        g->value_err_key = key.p;
        g->value_err_key_len = key.n;
    }
    g->total += value.n;
    /* `_` keys are reserved, but for the few allowed (`__CONTENT__`, a raw line). */
    if (key.n > 0 && key.p[0] == '_' && sc->key_err_group < 0 && !allowed_key(&sc->cfg, key)) {
        sc->key_err_group = sc->groups;
        sc->key_err_key = key.p;
        sc->key_err_key_len = key.n;
    }
    return WIRE_OK;
}

static int scan_log(Span msg, Scan *sc, GroupScan *g, uint64_t log)
{
    Reader r = reader_of(msg);
    Field f = {0};
    uint64_t time = 0; /* absent: 0, as proto3 reads it */
    while (r.p < r.end) {
        TRY(next_field(&r, &f));
        switch (f.tag) {
        case LOG_CONTENT:
            TRY(scan_content(f.bytes, sc, g, log));
            break;
        case LOG_TIME:
            time = f.value; /* the last occurrence wins, as upb merges */
            break;
        case LOG_COLLECT_TIME:
            break;
        default:
            note_unknown(sc, UNKNOWN_IN_LOG, f.tag, log);
        }
    }
    /* int64 from the varint's two's complement, as upb reads it */
    int64_t t = time > INT64_MAX ? -(int64_t)(~time) - 1 : (int64_t)time;
    if ((t < sc->cfg.log_time_min || t > sc->cfg.log_time_max) && sc->time_err_group < 0) {
        sc->time_err_group = sc->groups;
        sc->time_err_log = log;
        sc->time_err_value = t;
    }
    return WIRE_OK;
}

static int scan_group(Span msg, Scan *sc)
{
    GroupScan g = {0};
    uint64_t logs = 0;
    Reader r = reader_of(msg);
    Field f = {0};
    Span key, value;
    uint32_t unknown;
    while (r.p < r.end) {
        TRY(next_field(&r, &f));
        switch (f.tag) {
        case GROUP_LOG:
            TRY(scan_log(f.bytes, sc, &g, logs));
            logs++;
            break;
        case GROUP_LOG_TAG: /* its strings, and its fields */
            TRY(read_entry(f.bytes, 1, &key, &value, &unknown));
            if (unknown)
                note_unknown(sc, UNKNOWN_IN_TAG, unknown, 0);
            break;
        case GROUP_CONTEXT_FLOW:
        case GROUP_FILENAME:
        case GROUP_SOURCE:
        case GROUP_HOSTNAME:
            TRY(check_utf8(f.bytes));
            break;
        default:
            note_unknown(sc, UNKNOWN_IN_GROUP, f.tag, 0);
        }
    }
    sc->logs += logs;
    if (logs > sc->cfg.max_logs_per_group && sc->logs_err_group < 0) {
        sc->logs_err_group = sc->groups;
        sc->logs_err_count = logs;
    }
    /* Python checks group by group, a group's values in order, then its total. */
    if (sc->value_err_group < 0 && (g.value_err || g.total > sc->cfg.max_group_value_bytes)) {
        sc->value_err_group = sc->groups;
        sc->value_err_is_total = !g.value_err;
        sc->value_err_size = g.value_err ? g.value_err_size : g.total;
        sc->value_err_key = g.value_err_key;
        sc->value_err_key_len = g.value_err_key_len;
    }
    return WIRE_OK;
}

static int scan_list(Span msg, Scan *sc)
{
    Reader r = reader_of(msg);
    Field f = {0};
    while (r.p < r.end) {
        TRY(next_field(&r, &f));
        if (f.tag == LIST_GROUP) {
            TRY(scan_group(f.bytes, sc));
            sc->groups++;
        } else {
            note_unknown(sc, UNKNOWN_IN_LIST, f.tag, 0);
        }
    }
    return WIRE_OK;
}

/* Where an unknown field is, in ingest/decode.py's words. */
static PyObject *unknown_place(const Scan *sc)
{
    switch (sc->unknown_in) {
    case UNKNOWN_IN_LIST:
        return PyUnicode_FromString("the LogGroupList");
    case UNKNOWN_IN_GROUP:
        return PyUnicode_FromFormat("log group %zd", sc->unknown_group);
    case UNKNOWN_IN_LOG:
        return PyUnicode_FromFormat("log %llu of log group %zd",
                                    (unsigned long long)sc->unknown_log, sc->unknown_group);
    case UNKNOWN_IN_CONTENT:
        return PyUnicode_FromFormat("a content of log %llu of log group %zd",
                                    (unsigned long long)sc->unknown_log, sc->unknown_group);
    default:
        return PyUnicode_FromFormat("a tag of log group %zd", sc->unknown_group);
    }
}

static PyObject *raise_scan(const char *kind, PyObject *message)
{
    if (message == NULL)
        return NULL;
    PyObject *args = Py_BuildValue("(sN)", kind, message);
    if (args != NULL) {
        PyErr_SetObject(ScanError, args);
        Py_DECREF(args);
    }
    return NULL;
}

/* The key of an error message as Python's repr of the str. */
static PyObject *key_repr(const uint8_t *key, size_t len)
{
    PyObject *text = PyUnicode_DecodeUTF8((const char *)key, (Py_ssize_t)len, "replace");
    if (text == NULL)
        return NULL;
    PyObject *repr = PyObject_Repr(text);
    Py_DECREF(text);
    return repr;
}

static PyObject *scan_log_group_list(PyObject *self, PyObject *arg)
{
    const Config *cfg = PyModule_GetState(self);
    if (!cfg->configured)
        return not_configured();
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Scan sc = {0};
    sc.cfg = *cfg;
    sc.logs_err_group = sc.value_err_group = sc.key_err_group = sc.time_err_group = -1;
    Span body = {(const uint8_t *)view.buf, (size_t)view.len};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = scan_list(body, &sc);
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (rc == WIRE_GROUP) {
        PyErr_SetString(Unsupported, "the body holds a protobuf group (wire type 3)");
    } else if (rc != WIRE_OK) {
        raise_scan("InvalidContent",
                   PyUnicode_FromString("the body is not a valid protobuf LogGroupList (or a "
                                        "string in it is not valid UTF-8)"));
    } else if (sc.unknown_in != UNKNOWN_NONE) {
        PyObject *place = unknown_place(&sc);
        if (place != NULL) {
            raise_scan("InvalidContent",
                       PyUnicode_FromFormat("field %u with wire type %u in %U is not in the CLS "
                                            "LogGroupList schema; an upload with unknown fields "
                                            "is refused rather than stored in part",
                                            sc.unknown_tag >> 3, sc.unknown_tag & 7, place));
            Py_DECREF(place);
        }
    } else if (sc.time_err_group >= 0) {
        raise_scan("InvalidContent",
                   PyUnicode_FromFormat("log %llu of log group %zd has time %lld; Log.time must "
                                        "be an integer from %lld to %lld (seconds, "
                                        "milliseconds or microseconds)",
                                        (unsigned long long)sc.time_err_log, sc.time_err_group,
                                        (long long)sc.time_err_value,
                                        (long long)cfg->log_time_min,
                                        (long long)cfg->log_time_max));
    } else if (sc.logs_err_group >= 0) {
        raise_scan("LogSizeExceed",
                   PyUnicode_FromFormat("log group %zd holds %llu logs; at most %llu are allowed",
                                        sc.logs_err_group,
                                        (unsigned long long)sc.logs_err_count,
                                        (unsigned long long)cfg->max_logs_per_group));
    } else if (sc.logs == 0) {
        raise_scan("InvalidContent", PyUnicode_FromString("the upload holds no logs"));
    } else if (sc.value_err_group >= 0 && sc.value_err_is_total) {
        raise_scan("LogSizeExceed",
                   PyUnicode_FromFormat("log group %zd holds %llu bytes of values; at most %llu "
                                        "are allowed",
                                        sc.value_err_group,
                                        (unsigned long long)sc.value_err_size,
                                        (unsigned long long)cfg->max_group_value_bytes));
    } else if (sc.value_err_group >= 0) {
        PyObject *repr = key_repr(sc.value_err_key, sc.value_err_key_len);
        if (repr != NULL) {
            raise_scan("LogSizeExceed",
                       PyUnicode_FromFormat("a value of key %U in log group %zd is %llu bytes; "
                                            "at most %llu are allowed",
                                            repr, sc.value_err_group,
                                            (unsigned long long)sc.value_err_size,
                                            (unsigned long long)cfg->max_value_bytes));
            Py_DECREF(repr);
        }
    } else if (sc.key_err_group >= 0) {
        PyObject *repr = key_repr(sc.key_err_key, sc.key_err_key_len);
        if (repr != NULL) {
            raise_scan("InvalidContent",
                       PyUnicode_FromFormat("content key %U in log group %zd starts with '_', "
                                            "which is reserved",
                                            repr, sc.key_err_group));
            Py_DECREF(repr);
        }
    } else {
        result = Py_BuildValue("(Kn)", (unsigned long long)sc.logs, sc.groups);
    }
    PyBuffer_Release(&view);
    return result;
}

/* --- growable buffers ------------------------------------------------------------------ */

typedef struct {
    uint8_t *data;
    size_t len, cap;
    int borrowed; /* `data` is another object's (a bytes object's): moved, never reallocated */
} Buf;

static int buf_reserve(Buf *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return WIRE_OK;
    if (extra > SIZE_MAX / 2 - b->len)
        return WIRE_NOMEM;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < extra)
        cap *= 2;
    uint8_t *data;
    if (b->borrowed) {
        data = malloc(cap);
        if (data != NULL && b->len)
            memcpy(data, b->data, b->len);
    } else {
        data = realloc(b->data, cap);
    }
    if (data == NULL)
        return WIRE_NOMEM;
    b->data = data;
    b->cap = cap;
    b->borrowed = 0;
    return WIRE_OK;
}

static inline void put(Buf *b, const void *s, size_t n)
{
    memcpy(b->data + b->len, s, n); /* callers reserved room */
    b->len += n;
}

#define PUT_LIT(b, lit) put((b), (lit), sizeof(lit) - 1)

/* put() for the short pieces of every record (a key's `,"key":`, the meta prefix): 16 bytes at
 * a time, from a source readable 16 bytes past the piece's end rounded up, into room the
 * caller reserved 16 bytes beyond the piece (STRING_SLACK). */
static inline void put_blocks(Buf *b, const uint8_t *s, size_t n)
{
    uint8_t *o = b->data + b->len;
    for (size_t k = 0; k < n; k += 16) {
        uint64_t w[2];
        memcpy(w, s + k, 16);
        memcpy(o + k, w, 16);
    }
    b->len += n;
}

/* A growable array of fixed-size items. */
typedef struct {
    void *items;
    size_t len, cap, size;
} Vec;

static void *vec_push(Vec *v)
{
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        if (cap > SIZE_MAX / v->size)
            return NULL;
        void *items = realloc(v->items, cap * v->size);
        if (items == NULL)
            return NULL;
        v->items = items;
        v->cap = cap;
    }
    return (char *)v->items + v->len++ * v->size;
}

/* --- JSON strings, as orjson writes them ----------------------------------------------- */

/* 1: must be escaped (control characters, '"', '\\'); 2: starts a multi-byte sequence. */
static uint8_t char_class[256];

static void init_char_class(void)
{
    for (int c = 0; c < 0x20; c++)
        char_class[c] = 1;
    char_class['"'] = char_class['\\'] = 1;
    for (int c = 0x80; c < 0x100; c++)
        char_class[c] = 2;
}

static inline uint64_t has_byte_below(uint64_t w, uint8_t n)
{
    return (w - ONES * n) & ~w & HIGHS; /* exact "some byte < n" for n <= 128 */
}

static inline uint64_t has_byte(uint64_t w, uint8_t c)
{
    return has_byte_below(w ^ (ONES * c), 1);
}

/* The byte at s[0], which needs more than a copy: an escape, or a multi-byte sequence (kept
 * when well-formed, else U+FFFD as bytes.decode("utf-8", "replace") writes). Returns the
 * input bytes consumed. */
static inline size_t put_special(uint8_t **op, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t *o = *op;
    uint8_t c = s[0];
    size_t len = 1;
    if (c < 0x80) {
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\t': *o++ = 't'; break;
        case '\n': *o++ = 'n'; break;
        case '\f': *o++ = 'f'; break;
        case '\r': *o++ = 'r'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = (uint8_t)hex[c >> 4];
            *o++ = (uint8_t)hex[c & 15];
        }
    } else if (utf8_seq(s, n, &len)) {
        memcpy(o, s, len);
        o += len;
    } else {
        *o++ = 0xEF; /* U+FFFD */
        *o++ = 0xBF;
        *o++ = 0xBD;
    }
    *op = o;
    return len;
}

/* Room put_string may write beyond the string's own worst case (6 bytes an input byte, plus
 * the quotes): it copies 16 bytes at a time and then steps back over what it did not mean. */
#define STRING_SLACK 16
#define STRING_ROOM(n) (6 * (size_t)(n) + 2 + STRING_SLACK)

#if defined(__SSE2__)
#include <emmintrin.h>

/* Bit i set when p[i] needs more than a copy: a control character, '"', '\\' or a byte of a
 * multi-byte sequence (the signed compare takes bytes >= 0x80 as negative, so below 0x20). */
static inline unsigned special_mask(__m128i v)
{
    __m128i low = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
    __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    __m128i slash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(low, _mm_or_si128(quote, slash)));
}
#endif

/* Writes `s` as a JSON string, as orjson does: invalid UTF-8 becomes U+FFFD, non-ASCII is kept
 * as is. The caller reserved STRING_ROOM(n) bytes. `readable` is where the memory `s` lies in
 * ends (s + n at least): 16 bytes are read at a time while they lie before it, so that a short
 * string inside a larger buffer (a value inside its chunk) is decided by one load. */
static void put_string(Buf *b, const uint8_t *s, size_t n, const uint8_t *readable)
{
    uint8_t *o = b->data + b->len;
    size_t i = 0;
    *o++ = '"';
#if defined(__SSE2__)
    while (i < n && (size_t)(readable - (s + i)) >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        unsigned mask = special_mask(v);
        size_t left = n - i;
        if (left < 16)
            mask &= (1u << left) - 1;
        _mm_storeu_si128((__m128i *)o, v); /* the bytes before the first special one count */
        if (mask == 0) {
            size_t step = left < 16 ? left : 16;
            o += step;
            i += step;
            continue;
        }
        size_t k = (size_t)__builtin_ctz(mask);
        o += k;
        i += k;
        i += put_special(&o, s + i, n - i);
    }
#endif
    while (i < n) { /* the end of the buffer: a word, then a byte at a time */
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!((w & HIGHS) | has_byte_below(w, 0x20) | has_byte(w, '"') |
                  has_byte(w, '\\'))) {
                memcpy(o, &w, 8);
                o += 8;
                i += 8;
                continue;
            }
        }
        if (char_class[s[i]] == 0)
            *o++ = s[i++];
        else
            i += put_special(&o, s + i, n - i);
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
}

/* --- encode_json_lines ----------------------------------------------------------------- */

/* One key of an output object. `order` breaks ties between equal keys: the highest wins
 * (later wire position; the timestamp and meta fields above every content). */
typedef struct {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *val;
    size_t val_len;
    uint32_t order;
    int fragment; /* `val` is JSON already, written verbatim */
} Pair;

#define ORDER_TIMESTAMP (UINT32_MAX - 1)
#define ORDER_META UINT32_MAX

static inline int pair_cmp(const Pair *a, const Pair *b)
{
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = n ? memcmp(a->key, b->key, n) : 0;
    if (c != 0)
        return c;
    if (a->key_len != b->key_len)
        return a->key_len < b->key_len ? -1 : 1;
    return a->order < b->order ? -1 : (a->order > b->order ? 1 : 0);
}

static int pair_qsort_cmp(const void *a, const void *b)
{
    return pair_cmp((const Pair *)a, (const Pair *)b);
}

/* Sorts by key bytes (= code points, as orjson's OPT_SORT_KEYS does for valid UTF-8) and
 * keeps the last of equal keys, as a dict built from them would. Returns the new count. */
static size_t sort_unique(Pair *p, size_t n)
{
    if (n <= 24) { /* records hold a dozen keys: insertion sort beats qsort's calls */
        for (size_t i = 1; i < n; i++) {
            Pair x = p[i];
            size_t j = i;
            while (j > 0 && pair_cmp(&p[j - 1], &x) > 0) {
                p[j] = p[j - 1];
                j--;
            }
            p[j] = x;
        }
    } else {
        qsort(p, n, sizeof(Pair), pair_qsort_cmp);
    }
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (out > 0 && p[out - 1].key_len == p[i].key_len &&
            (p[i].key_len == 0 || memcmp(p[out - 1].key, p[i].key, p[i].key_len) == 0))
            p[out - 1] = p[i];
        else
            p[out++] = p[i];
    }
    return out;
}

static inline int same_key(const Pair *p, const char *key, size_t len)
{
    return p->key_len == len && memcmp(p->key, key, len) == 0;
}

/* The group's meta fields, in the (sorted) order they are written. */
enum { META_FILENAME, META_HOSTNAME, META_SOURCE, META_TAG, META_COUNT };
static const char *const META_KEYS[META_COUNT] = {"__FILENAME__", "__HOSTNAME__", "__SOURCE__",
                                                  "__TAG__"};

typedef struct {
    /* inputs */
    const uint8_t *client_ip;
    size_t client_ip_len;
    int meta_enabled[META_COUNT];
    int timestamp;
    int64_t time_ms_low, time_ms_high, log_time_min, log_time_max; /* from Config */
    /* outputs */
    Buf out;
    Vec ends;       /* size_t: end offset of each record in `out` */
    Vec group_ends; /* size_t: records written by the end of each non-empty group */
    /* scratch, reused */
    Vec logs;  /* Span per Log of the current group */
    Vec tags;  /* Pair per LogTag */
    Vec pairs; /* Pair per key of the current record */
    Buf meta;  /* the current group's meta values as JSON */
    const uint8_t *in_end; /* the end of the chunk: put_string may read up to it */
    /* The last sorted record's shape, reused while records repeat its keys in the same wire
     * order (as one source's records do): sorting depends on the keys and their order only,
     * so the same keys give the same order, and keys already checked are UTF-8. */
    Vec shape_keys;  /* Span per content pair, in wire order */
    Vec shape_perm;  /* uint32_t per output pair: its wire index, shape_keys.len for the time */
    Vec shape_ends;  /* size_t per output pair: where its `,"key":` ends in shape_text */
    Buf shape_text;  /* the output keys as JSON, each with its comma (but the first) and colon */
    int shape_valid;
    int shape_unique; /* no key twice (the timestamp's included): any order of them will do */
} Encoder;

/* Log.time in ms (timefmt.normalise_log_time_ms), as decimal digits. A time out of the
 * accepted range (stored before ingest refused it) is clamped into it first, as
 * formats/records.py does, so that one such record cannot fail its whole window. */
static void format_time(const Encoder *e, int64_t t, char *digits, size_t *len)
{
    int64_t ms;
    if (t < e->log_time_min)
        t = e->log_time_min;
    if (t > e->log_time_max)
        t = e->log_time_max;
    /* configure() checks 0 <= min <= max: no product below overflows, and truncation is
     * floor division */
    if (t < e->time_ms_low)
        ms = t * 1000;
    else if (t < e->time_ms_high)
        ms = t;
    else
        ms = t / 1000;
    /* two digits a step: a time in ms has 13 */
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
                                "31323334353637383940414243444546474849505152535455565758596061"
                                "62636465666768697071727374757677787980818283848586878889909192"
                                "93949596979899";
    char tmp[24];
    size_t n = sizeof tmp;
    uint64_t u = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    while (u >= 100) {
        unsigned d = (unsigned)(u % 100);
        u /= 100;
        tmp[--n] = pairs[2 * d + 1];
        tmp[--n] = pairs[2 * d];
    }
    if (u >= 10) {
        tmp[--n] = pairs[2 * u + 1];
        tmp[--n] = pairs[2 * u];
    } else {
        tmp[--n] = (char)('0' + u);
    }
    size_t k = 0;
    if (ms < 0)
        digits[k++] = '-';
    memcpy(digits + k, tmp + n, sizeof tmp - n);
    *len = k + sizeof tmp - n;
}

/* a == b, for spans inside the chunk (which ends at `end`): a short key, the usual case, is
 * compared by one 16-byte load of each where the chunk has them. */
static inline int same_bytes(Span a, Span b, const uint8_t *end)
{
    if (a.n != b.n)
        return 0;
    if (a.n == 0) /* an entry without a key has no pointer into the chunk */
        return 1;
#if defined(__SSE2__)
    if (a.n <= 16 && end - a.p >= 16 && end - b.p >= 16) {
        __m128i eq = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)a.p),
                                    _mm_loadu_si128((const __m128i *)b.p));
        unsigned differ = ~(unsigned)_mm_movemask_epi8(eq) & ((1u << a.n) - 1);
        return differ == 0;
    }
#endif
    return memcmp(a.p, b.p, a.n) == 0;
}

/* Sorts this record's pairs (wire order in, the timestamp last) and, unless meta fields merge
 * in, keeps the result as the shape later records may reuse. Returns the sorted count in *n
 * and whether meta fields are merged in. */
static int sort_record(Encoder *e, size_t content_count, const Pair *meta_pairs,
                       size_t meta_count, size_t *count, int *merged)
{
    Pair *pairs = e->pairs.items;
    for (size_t i = 0; i < content_count; i++)
        if (!utf8_valid(pairs[i].key, pairs[i].key_len))
            return WIRE_BAD_KEY;
    size_t n = sort_unique(pairs, e->pairs.len);
    e->pairs.len = n;
    /* A content key named like an enabled meta field (or an empty record): meta wins and
     * everything is sorted together; otherwise the meta prefix goes in front. */
    int merge = 0;
    if (meta_count) {
        merge = n == 0;
        for (size_t i = 0; i < n && !merge; i++)
            for (size_t m = 0; m < meta_count; m++)
                if (same_key(&pairs[i], (const char *)meta_pairs[m].key, meta_pairs[m].key_len))
                    merge = 1;
    }
    *merged = merge;
    e->shape_valid = 0;
    if (merge) {
        for (size_t m = 0; m < meta_count; m++) {
            Pair *p = vec_push(&e->pairs);
            if (p == NULL)
                return WIRE_NOMEM;
            *p = meta_pairs[m];
        }
        pairs = e->pairs.items;
        n = sort_unique(pairs, e->pairs.len);
        e->pairs.len = n;
        *count = n;
        return WIRE_OK;
    }
    *count = n;
    /* The shape: keys in wire order (still in e->shape_keys, filled by the caller), the
     * permutation, and the keys' JSON. */
    e->shape_perm.len = e->shape_ends.len = e->shape_text.len = 0;
    size_t room = 0;
    for (size_t i = 0; i < n; i++)
        room += STRING_ROOM(pairs[i].key_len) + 2;
    if (buf_reserve(&e->shape_text, room + STRING_SLACK) != WIRE_OK)
        return WIRE_NOMEM;
    for (size_t i = 0; i < n; i++) {
        uint32_t *perm = vec_push(&e->shape_perm);
        size_t *end = vec_push(&e->shape_ends);
        if (perm == NULL || end == NULL)
            return WIRE_NOMEM;
        *perm = pairs[i].order == ORDER_TIMESTAMP ? (uint32_t)content_count : pairs[i].order;
        if (i)
            e->shape_text.data[e->shape_text.len++] = ',';
        put_string(&e->shape_text, pairs[i].key, pairs[i].key_len,
                   pairs[i].order == ORDER_TIMESTAMP ? pairs[i].key + pairs[i].key_len
                                                      : e->in_end);
        e->shape_text.data[e->shape_text.len++] = ':';
        *end = e->shape_text.len;
    }
    /* put_blocks reads up to 15 bytes past the last key: defined bytes (room has the slack) */
    memset(e->shape_text.data + e->shape_text.len, 0, STRING_SLACK);
    e->shape_valid = 1;
    e->shape_unique = n == content_count + (size_t)(e->timestamp != 0);
    return WIRE_OK;
}

/* Records of at most this many keys are matched to the shape in any order. */
#define SHAPE_MAP_MAX 64

static int encode_log(Encoder *e, Span msg, const Pair *meta_pairs, size_t meta_count,
                      const uint8_t *prefix, size_t prefix_len, size_t meta_bytes)
{
    uint64_t time = 0;
    e->pairs.len = 0;
    uint32_t order = 0;
    Reader r = reader_of(msg);
    Field f = {0};
    Span key, value;
    uint32_t unknown;
    /* Whether the keys so far are the shape's, in its order. */
    int same = e->shape_valid;
    const Span *shape_keys = e->shape_keys.items;
    size_t shape_count = e->shape_keys.len;
    while (r.p < r.end) {
        TRY(next_field(&r, &f));
        if (f.tag == LOG_TIME) {
            time = f.value;
        } else if (f.tag == LOG_CONTENT) {
            TRY(read_entry(f.bytes, 0, &key, &value, &unknown));
            if (unknown)
                continue;
            if (same && (order >= shape_count ||
                         !same_bytes(shape_keys[order], key, e->in_end)))
                same = 0;
            Pair *p = vec_push(&e->pairs);
            if (p == NULL)
                return WIRE_NOMEM;
            *p = (Pair){key.p, key.n, value.p, value.n, order++, 0};
        }
    }
    size_t content_count = order;
    same = same && content_count == shape_count;
    /* The shape's keys in another wire order (a source that builds each record from a hash
     * map): the sorted order is still the shape's when both hold each key once. `inv` maps
     * the shape's wire index to this record's. */
    uint32_t inv[SHAPE_MAP_MAX + 1];
    int mapped = 0;
    if (!same && e->shape_valid && e->shape_unique && content_count == shape_count &&
        content_count <= SHAPE_MAP_MAX) {
        uint8_t used[SHAPE_MAP_MAX] = {0};
        const Pair *wire = e->pairs.items;
        mapped = 1;
        for (size_t i = 0; i < content_count && mapped; i++) {
            Span k = {wire[i].key, wire[i].key_len};
            size_t j = 0;
            while (j < shape_count && (used[j] || !same_bytes(shape_keys[j], k, e->in_end)))
                j++;
            if (j == shape_count) {
                mapped = 0; /* a key the shape has not, or has once and this record twice */
            } else {
                used[j] = 1;
                inv[j] = (uint32_t)i;
            }
        }
        inv[content_count] = (uint32_t)content_count; /* the timestamp */
        same = mapped;
    }
    char digits[24];
    size_t digits_len = 0;
    if (e->timestamp) {
        /* int64 from the varint's two's complement, as upb reads it */
        int64_t t = time > INT64_MAX ? -(int64_t)(~time) - 1 : (int64_t)time;
        format_time(e, t, digits, &digits_len);
        Pair *p = vec_push(&e->pairs);
        if (p == NULL)
            return WIRE_NOMEM;
        *p = (Pair){(const uint8_t *)"__TIMESTAMP__", 13, (const uint8_t *)digits, digits_len,
                    ORDER_TIMESTAMP, 1};
    }
    size_t n = e->pairs.len;
    int merge = 0;
    if (!same) {
        /* Remember this record's keys in wire order before sorting moves them. */
        e->shape_keys.len = 0;
        const Pair *wire = e->pairs.items;
        for (size_t i = 0; i < content_count; i++) {
            Span *k = vec_push(&e->shape_keys);
            if (k == NULL)
                return WIRE_NOMEM;
            *k = (Span){wire[i].key, wire[i].key_len};
        }
        TRY(sort_record(e, content_count, meta_pairs, meta_count, &n, &merge));
    }
    /* Room for the worst case: every byte escaped as \u00XX. Keys and values are wire bytes
     * of this log, the rest is the group's meta. */
    size_t need = 6 * msg.n + 16 * n + prefix_len + meta_bytes + 128 + STRING_SLACK;
    if (buf_reserve(&e->out, need) != WIRE_OK)
        return WIRE_NOMEM;
    Buf *o = &e->out;
    const Pair *pairs = e->pairs.items;
    if (merge) {
        /* meta fields sorted in with the contents: every key written from the sorted pairs */
        o->data[o->len++] = '{';
        for (size_t i = 0; i < n; i++) {
            if (i)
                o->data[o->len++] = ',';
            /* the timestamp's and meta fields' keys are constants, not in the chunk */
            put_string(o, pairs[i].key, pairs[i].key_len,
                       pairs[i].fragment ? pairs[i].key + pairs[i].key_len : e->in_end);
            o->data[o->len++] = ':';
            if (pairs[i].fragment)
                put(o, pairs[i].val, pairs[i].val_len);
            else
                put_string(o, pairs[i].val, pairs[i].val_len, e->in_end);
        }
    } else {
        /* The shape's keys, in its order; the values from pairs[], which is in wire order
         * (the timestamp after the contents) for a record of the same shape, and sorted,
         * like the shape, for the record just sorted. */
        if (meta_count)
            put_blocks(o, prefix, prefix_len);
        else
            o->data[o->len++] = '{';
        const uint32_t *perm = e->shape_perm.items;
        const size_t *ends = e->shape_ends.items;
        const uint8_t *text = e->shape_text.data;
        size_t at = 0;
        for (size_t i = 0; i < e->shape_perm.len; i++) {
            put_blocks(o, text + at, ends[i] - at);
            at = ends[i];
            const Pair *p = !same ? &pairs[i] : mapped ? &pairs[inv[perm[i]]] : &pairs[perm[i]];
            if (p->fragment)
                put(o, p->val, p->val_len);
            else
                put_string(o, p->val, p->val_len, e->in_end);
        }
    }
    o->data[o->len++] = '}';
    o->data[o->len++] = '\n';
    size_t *end = vec_push(&e->ends);
    if (end == NULL)
        return WIRE_NOMEM;
    *end = o->len;
    return WIRE_OK;
}

/* `{"a":"1","b":"2"}` for the group's tags, sorted, the last of a repeated key winning. */
static int put_tags(Encoder *e)
{
    Pair *tags = e->tags.items;
    size_t n = sort_unique(tags, e->tags.len);
    size_t need = 2;
    for (size_t i = 0; i < n; i++)
        need += STRING_ROOM(tags[i].key_len) + STRING_ROOM(tags[i].val_len) + 2;
    if (buf_reserve(&e->meta, need) != WIRE_OK)
        return WIRE_NOMEM;
    PUT_LIT(&e->meta, "{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            PUT_LIT(&e->meta, ",");
        put_string(&e->meta, tags[i].key, tags[i].key_len, e->in_end);
        PUT_LIT(&e->meta, ":");
        put_string(&e->meta, tags[i].val, tags[i].val_len, e->in_end);
    }
    PUT_LIT(&e->meta, "}");
    return WIRE_OK;
}

static int encode_group(Encoder *e, Span msg)
{
    Span meta_span[META_TAG] = {{NULL, 0}, {NULL, 0}, {NULL, 0}};
    e->logs.len = e->tags.len = 0;
    uint32_t tag_order = 0;
    Reader r = reader_of(msg);
    Field f = {0};
    Span key, value;
    uint32_t unknown;
    /* First the group's own fields, wherever they are among its logs; contextFlow (2) is not
     * read by shipping. */
    while (r.p < r.end) {
        TRY(next_field(&r, &f));
        switch (f.tag) {
        case GROUP_LOG: {
            Span *log = vec_push(&e->logs);
            if (log == NULL)
                return WIRE_NOMEM;
            *log = f.bytes;
            break;
        }
        case GROUP_FILENAME:
            meta_span[META_FILENAME] = f.bytes;
            break;
        case GROUP_SOURCE:
            meta_span[META_SOURCE] = f.bytes;
            break;
        case GROUP_LOG_TAG:
            TRY(read_entry(f.bytes, 0, &key, &value, &unknown));
            if (!unknown) {
                Pair *t = vec_push(&e->tags);
                if (t == NULL)
                    return WIRE_NOMEM;
                *t = (Pair){key.p, key.n, value.p, value.n, tag_order++, 0};
            }
            break;
        case GROUP_HOSTNAME:
            meta_span[META_HOSTNAME] = f.bytes;
            break;
        }
    }
    if (e->logs.len == 0) /* records.iter_batches skips empty groups */
        return WIRE_OK;
    /* Python reads every tag of a non-empty group, used or not */
    const Pair *tags = e->tags.items;
    for (size_t i = 0; i < e->tags.len; i++)
        if (!utf8_valid(tags[i].key, tags[i].key_len))
            return WIRE_BAD_KEY;

    /* The meta values as JSON, once per group: `e->meta` holds them back to back. */
    size_t starts[META_COUNT + 1];
    e->meta.len = 0;
    for (int m = 0; m < META_COUNT; m++) {
        starts[m] = e->meta.len;
        if (!e->meta_enabled[m])
            continue;
        if (m == META_TAG) {
            TRY(put_tags(e));
            continue;
        }
        Span s = meta_span[m];
        if (m == META_SOURCE && s.n == 0) { /* CLS fills in the uploader's address */
            s.p = e->client_ip;
            s.n = e->client_ip_len;
        }
        if (buf_reserve(&e->meta, STRING_ROOM(s.n)) != WIRE_OK)
            return WIRE_NOMEM;
        /* the client's address is not in the chunk: read no further than its end */
        put_string(&e->meta, s.p, s.n, s.p == e->client_ip ? s.p + s.n : e->in_end);
    }
    starts[META_COUNT] = e->meta.len;
    /* ...and the prefix spliced in front of records: `{"__FILENAME__":"…",…,` */
    Pair meta_pairs[META_COUNT];
    size_t meta_count = 0, meta_bytes = e->meta.len;
    for (int m = 0; m < META_COUNT; m++) {
        if (e->meta_enabled[m])
            meta_pairs[meta_count++] =
                (Pair){(const uint8_t *)META_KEYS[m], strlen(META_KEYS[m]), NULL,
                       starts[m + 1] - starts[m], ORDER_META, 1};
    }
    size_t prefix_at = e->meta.len;
    if (buf_reserve(&e->meta, meta_bytes + 20 * META_COUNT + 2 + STRING_SLACK) != WIRE_OK)
        return WIRE_NOMEM;
    PUT_LIT(&e->meta, "{");
    for (size_t m = 0, k = 0; m < META_COUNT; m++) {
        if (!e->meta_enabled[m])
            continue;
        put(&e->meta, "\"", 1);
        put(&e->meta, META_KEYS[m], strlen(META_KEYS[m]));
        put(&e->meta, "\":", 2);
        put(&e->meta, e->meta.data + starts[m], starts[m + 1] - starts[m]);
        put(&e->meta, ",", 1);
        meta_pairs[k++].val = e->meta.data + starts[m]; /* e->meta no longer grows */
    }
    const uint8_t *prefix = e->meta.data + prefix_at;
    size_t prefix_len = e->meta.len - prefix_at;
    memset(e->meta.data + e->meta.len, 0, STRING_SLACK); /* put_blocks reads past the prefix */

    const Span *logs = e->logs.items;
    for (size_t i = 0; i < e->logs.len; i++)
        TRY(encode_log(e, logs[i], meta_pairs, meta_count, prefix, prefix_len, meta_bytes));
    size_t *group_end = vec_push(&e->group_ends);
    if (group_end == NULL)
        return WIRE_NOMEM;
    *group_end = e->ends.len;
    return WIRE_OK;
}

static int encode_list(Encoder *e, Span msg)
{
    Reader r = reader_of(msg);
    Field f = {0};
    while (r.p < r.end) {
        TRY(next_field(&r, &f));
        if (f.tag == LIST_GROUP)
            TRY(encode_group(e, f.bytes));
    }
    return WIRE_OK;
}

static void encoder_free(Encoder *e)
{
    if (!e->out.borrowed)
        free(e->out.data);
    free(e->ends.items);
    free(e->group_ends.items);
    free(e->logs.items);
    free(e->tags.items);
    free(e->pairs.items);
    free(e->meta.data);
    free(e->shape_keys.items);
    free(e->shape_perm.items);
    free(e->shape_ends.items);
    free(e->shape_text.data);
}

static PyObject *size_list(const Vec *v)
{
    PyObject *list = PyList_New((Py_ssize_t)v->len);
    if (list == NULL)
        return NULL;
    const size_t *items = v->items;
    for (size_t i = 0; i < v->len; i++) {
        PyObject *item = PyLong_FromSize_t(items[i]);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    return list;
}

static PyObject *encode_json_lines(PyObject *self, PyObject *args)
{
    const Config *cfg = PyModule_GetState(self);
    if (!cfg->configured)
        return not_configured();
    Py_buffer view;
    PyObject *client_ip, *meta_fields;
    int enable_tag;
    if (!PyArg_ParseTuple(args, "y*UOp:encode_json_lines", &view, &client_ip, &meta_fields,
                          &enable_tag))
        return NULL;
    Encoder e;
    memset(&e, 0, sizeof e);
    e.ends.size = e.group_ends.size = sizeof(size_t);
    e.logs.size = e.shape_keys.size = sizeof(Span);
    e.tags.size = e.pairs.size = sizeof(Pair);
    e.shape_perm.size = sizeof(uint32_t);
    e.shape_ends.size = sizeof(size_t);
    e.time_ms_low = cfg->time_ms_low;
    e.time_ms_high = cfg->time_ms_high;
    e.log_time_min = cfg->log_time_min;
    e.log_time_max = cfg->log_time_max;
    PyObject *result = NULL, *data = NULL;
    Py_ssize_t ip_len;
    const char *ip = PyUnicode_AsUTF8AndSize(client_ip, &ip_len);
    PyObject *fields = PySequence_Fast(meta_fields, "meta_fields must be a sequence");
    if (ip == NULL || fields == NULL)
        goto done;
    e.client_ip = (const uint8_t *)ip;
    e.client_ip_len = (size_t)ip_len;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fields); i++) {
        PyObject *name = PySequence_Fast_GET_ITEM(fields, i);
        if (!PyUnicode_Check(name))
            continue; /* jsonlines compares names with ==: anything else matches nothing */
        if (PyUnicode_CompareWithASCIIString(name, "__TIMESTAMP__") == 0)
            e.timestamp = 1;
        for (int m = 0; m < META_TAG; m++)
            if (PyUnicode_CompareWithASCIIString(name, META_KEYS[m]) == 0)
                e.meta_enabled[m] = 1;
    }
    e.meta_enabled[META_TAG] = enable_tag;

    Span chunk = {(const uint8_t *)view.buf, (size_t)view.len};
    e.in_end = chunk.p + chunk.n;
    /* The lines go straight into the bytes object returned, sized for what a chunk usually
     * becomes (JSON lines with the meta fields are ~1.1-1.5x the protobuf) and cut to length
     * at the end; a chunk that needs more moves to a growing buffer, copied once at the end. */
    if ((size_t)view.len > ((size_t)PY_SSIZE_T_MAX - 65536) / 2) {
        PyErr_NoMemory();
        goto done;
    }
    size_t estimate = 2 * (size_t)view.len + 65536;
    data = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)estimate);
    if (data == NULL)
        goto done;
    e.out = (Buf){(uint8_t *)PyBytes_AS_STRING(data), 0, estimate, 1};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = encode_list(&e, chunk);
    Py_END_ALLOW_THREADS
    switch (rc) {
    case WIRE_OK: {
        if (e.out.borrowed) {
            if (_PyBytes_Resize(&data, (Py_ssize_t)e.out.len) != 0)
                break; /* data is NULL, the error set */
        } else {
            Py_SETREF(data, PyBytes_FromStringAndSize((const char *)e.out.data,
                                                      (Py_ssize_t)e.out.len));
            if (data == NULL)
                break;
        }
        PyObject *ends = size_list(&e.ends);
        PyObject *groups = ends ? size_list(&e.group_ends) : NULL;
        if (groups != NULL)
            result = PyTuple_Pack(3, data, ends, groups);
        Py_XDECREF(ends);
        Py_XDECREF(groups);
        break;
    }
    case WIRE_NOMEM:
        PyErr_NoMemory();
        break;
    case WIRE_GROUP:
        PyErr_SetString(Unsupported, "the chunk holds a protobuf group (wire type 3)");
        break;
    case WIRE_BAD_KEY:
        PyErr_SetString(Unsupported, "a content or tag key is not valid UTF-8");
        break;
    default:
        PyErr_SetString(Unsupported, "the chunk is not a valid LogGroupList");
    }
done:
    Py_XDECREF(data);
    Py_XDECREF(fields);
    encoder_free(&e);
    PyBuffer_Release(&view);
    return result;
}

/* --- lines -> Log messages (the uploader) ---------------------------------------------- */

/* `cls-shipper upload` turns file lines into LogGroup.logs. The rules are the CLI's
 * (ingest/lines.py, `contents`); this walk takes the lines it can decide exactly (valid
 * UTF-8, a JSON object of string, integer, true/false/null values and distinct keys, or a
 * plain line) and hands every other line to that Python function, so both agree by
 * construction (tests/unit/ingest/test_lines.py checks them against each other). */

#define LINES_MAX_PAIRS 256

typedef struct {
    const uint8_t *key, *value;
    size_t key_len, value_len;
} OutPair;

typedef struct {
    Buf scratch; /* escaped strings of one line, decoded; sized once per line so never moves */
    OutPair pairs[LINES_MAX_PAIRS];
    size_t count;
} LineParse;

/* The whitespace Python's str.strip() removes, as far as ASCII goes. */
static inline int py_space(uint8_t c)
{
    return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
}

static inline int json_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int hex4(const uint8_t *p, const uint8_t *end, uint32_t *out)
{
    if (end - p < 4)
        return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

/* The end of a run of string bytes that need no decoding. */
static inline const uint8_t *plain_run(const uint8_t *p, const uint8_t *end)
{
    while (end - p >= 8) { /* a word at a time to the next quote, backslash or control */
        uint64_t w;
        memcpy(&w, p, 8);
        if (has_byte(w, '"') | has_byte(w, '\\') | has_byte_below(w, 0x20))
            break;
        p += 8;
    }
    while (p < end && *p != '"' && *p != '\\' && *p >= 0x20)
        p++;
    return p;
}

/* A JSON string at *pp (after its opening quote): 1 with the text in place when it has no
 * escape, else decoded into the scratch buffer (which has room: decoding never grows a
 * string); 0 for anything to leave to Python (a control character, a bad escape, a lone
 * surrogate). */
static int line_string(const uint8_t **pp, const uint8_t *end, Buf *b, const uint8_t **out,
                       size_t *len)
{
    const uint8_t *p = plain_run(*pp, end);
    if (p < end && *p == '"') { /* the common case: nothing to decode */
        *out = *pp;
        *len = (size_t)(p - *pp);
        *pp = p + 1;
        return 1;
    }
    size_t off = b->len;
    p = *pp;
    for (;;) {
        const uint8_t *run = p;
        p = plain_run(p, end);
        put(b, run, (size_t)(p - run));
        if (p >= end || *p < 0x20)
            return 0;
        if (*p == '"')
            break;
        if (++p >= end)
            return 0;
        uint8_t c = *p++, one;
        switch (c) {
        case '"': one = '"'; break;
        case '\\': one = '\\'; break;
        case '/': one = '/'; break;
        case 'b': one = '\b'; break;
        case 'f': one = '\f'; break;
        case 'n': one = '\n'; break;
        case 'r': one = '\r'; break;
        case 't': one = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (!hex4(p, end, &cp))
                return 0;
            p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return 0;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, end, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return 0;
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            uint8_t u[4];
            size_t n;
            if (cp < 0x80) {
                u[0] = (uint8_t)cp;
                n = 1;
            } else if (cp < 0x800) {
                u[0] = (uint8_t)(0xC0 | cp >> 6);
                u[1] = (uint8_t)(0x80 | (cp & 0x3F));
                n = 2;
            } else if (cp < 0x10000) {
                u[0] = (uint8_t)(0xE0 | cp >> 12);
                u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (uint8_t)(0x80 | (cp & 0x3F));
                n = 3;
            } else {
                u[0] = (uint8_t)(0xF0 | cp >> 18);
                u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                u[3] = (uint8_t)(0x80 | (cp & 0x3F));
                n = 4;
            }
            put(b, u, n); /* at most as long as the 6 or 12 escape bytes it replaces */
            continue;
        }
        default:
            return 0;
        }
        put(b, &one, 1);
    }
    *out = b->data + off;
    *len = b->len - off;
    *pp = p + 1;
    return 1;
}

/* A JSON object line as orjson.loads + the CLI's stringification would give it: 1 and the
 * pairs, 0 to leave the line to Python, -1 out of memory. Values: strings as decoded, and
 * the literals and integers whose orjson.dumps text is their own text (no "-0", at most 18
 * digits); floats, nested values and repeated keys go to Python. */
static int line_object(const uint8_t *p, const uint8_t *end, LineParse *lp)
{
    lp->scratch.len = 0;
    lp->count = 0;
    if (buf_reserve(&lp->scratch, (size_t)(end - p)) != WIRE_OK)
        return -1;
    p++; /* '{' */
    while (p < end && json_space(*p))
        p++;
    if (p < end && *p == '}')
        return 0; /* {}: not a record with fields */
    for (;;) {
        if (p >= end || *p != '"' || lp->count == LINES_MAX_PAIRS)
            return 0;
        OutPair *pair = &lp->pairs[lp->count];
        p++;
        if (!line_string(&p, end, &lp->scratch, &pair->key, &pair->key_len))
            return 0;
        while (p < end && json_space(*p))
            p++;
        if (p >= end || *p != ':')
            return 0;
        p++;
        while (p < end && json_space(*p))
            p++;
        if (p >= end)
            return 0;
        if (*p == '"') {
            p++;
            if (!line_string(&p, end, &lp->scratch, &pair->value, &pair->value_len))
                return 0;
        } else {
            const uint8_t *v = p;
            if (*p == '-')
                p++;
            if (p < end && *p >= '0' && *p <= '9') {
                const uint8_t *digits = p;
                while (p < end && *p >= '0' && *p <= '9')
                    p++;
                size_t n = (size_t)(p - digits);
                if (n > 18 || (digits[0] == '0' && (n > 1 || v != digits)))
                    return 0; /* leading zero (invalid), "-0" (dumps "0"), or long */
                if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
                    return 0;
            } else if (v == p && end - p >= 4 && memcmp(p, "true", 4) == 0) {
                p += 4;
            } else if (v == p && end - p >= 5 && memcmp(p, "false", 5) == 0) {
                p += 5;
            } else if (v == p && end - p >= 4 && memcmp(p, "null", 4) == 0) {
                p += 4;
            } else {
                return 0;
            }
            pair->value = v;
            pair->value_len = (size_t)(p - v);
        }
        for (size_t i = 0; i < lp->count; i++) /* orjson keeps the last of repeated keys */
            if (lp->pairs[i].key_len == pair->key_len &&
                memcmp(lp->pairs[i].key, pair->key, pair->key_len) == 0)
                return 0;
        lp->count++;
        while (p < end && json_space(*p))
            p++;
        if (p < end && *p == ',') {
            p++;
            while (p < end && json_space(*p))
                p++;
            continue;
        }
        if (p < end && *p == '}')
            break;
        return 0;
    }
    p++;
    while (p < end && json_space(*p))
        p++;
    return p == end;
}

static inline size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline void put_varint(Buf *b, uint64_t v)
{
    while (v >= 0x80) {
        b->data[b->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->data[b->len++] = (uint8_t)v;
}

/* One Log (LogGroup field 1) with its time and contents, as the SDK's proto2 classes
 * serialise it: every key and value present, even when empty. */
static int put_log(Buf *out, int64_t time_ms, const OutPair *pairs, size_t count)
{
    size_t body = 1 + varint_len((uint64_t)time_ms);
    for (size_t i = 0; i < count; i++) {
        size_t c = 2 + varint_len(pairs[i].key_len) + pairs[i].key_len +
                   varint_len(pairs[i].value_len) + pairs[i].value_len;
        body += 1 + varint_len(c) + c;
    }
    if (buf_reserve(out, 1 + varint_len(body) + body) != WIRE_OK)
        return WIRE_NOMEM;
    out->data[out->len++] = TAG(1, WT_LEN);
    put_varint(out, body);
    out->data[out->len++] = TAG(1, WT_VARINT);
    put_varint(out, (uint64_t)time_ms);
    for (size_t i = 0; i < count; i++) {
        size_t c = 2 + varint_len(pairs[i].key_len) + pairs[i].key_len +
                   varint_len(pairs[i].value_len) + pairs[i].value_len;
        out->data[out->len++] = TAG(2, WT_LEN);
        put_varint(out, c);
        out->data[out->len++] = TAG(1, WT_LEN);
        put_varint(out, pairs[i].key_len);
        put(out, pairs[i].key, pairs[i].key_len);
        out->data[out->len++] = TAG(2, WT_LEN);
        put_varint(out, pairs[i].value_len);
        put(out, pairs[i].value, pairs[i].value_len);
    }
    return WIRE_OK;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000; /* time.time_ns() // 10**6 */
}

enum { LINES_AUTO = 0, LINES_RAW = 1, LINES_JSON = 2 };

static PyObject *encode_lines(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer view;
    Py_ssize_t start, logs_room, value_room;
    int eof, mode, have_logs;
    PyObject *fallback;
    if (!PyArg_ParseTuple(args, "y*npinnpO:encode_lines", &view, &start, &eof, &mode,
                          &logs_room, &value_room, &have_logs, &fallback))
        return NULL;
    PyObject *result = NULL;
    LineParse *lp = calloc(1, sizeof *lp);
    OutPair *outs = malloc(sizeof(OutPair) * LINES_MAX_PAIRS);
    Buf out = {0};
    Py_ssize_t logs = 0, value_bytes = 0;
    int full = 0;
    if (lp == NULL || outs == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (start < 0 || start > view.len || mode < LINES_AUTO || mode > LINES_JSON) {
        PyErr_SetString(PyExc_ValueError, "encode_lines: bad start or mode");
        goto done;
    }
    const uint8_t *base = view.buf, *end_all = base + view.len;
    const uint8_t *p = base + start;
    while (p < end_all) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end_all - p));
        if (nl == NULL && !eof)
            break; /* a line not complete yet */
        const uint8_t *line_end = nl ? nl : end_all;
        const uint8_t *next = nl ? nl + 1 : end_all;
        const uint8_t *e = line_end;
        while (e > p && (e[-1] == '\r' || e[-1] == '\n'))
            e--;
        const uint8_t *q = p;
        while (q < e && py_space(*q))
            q++;
        if (q == e) { /* blank: skipped */
            p = next;
            continue;
        }
        size_t count = 0;
        PyObject *held = NULL; /* the fallback's dict, while its strings are in use */
        /* Non-ASCII before any other character: Python judges Unicode whitespace. */
        int decided = *q < 0x80 && check_utf8((Span){p, (size_t)(e - p)}) == WIRE_OK;
        if (decided && mode != LINES_RAW && *p == '{') {
            int rc = line_object(p, e, lp);
            if (rc < 0) {
                PyErr_NoMemory();
                goto done;
            }
            decided = rc;
            if (decided) {
                memcpy(outs, lp->pairs, lp->count * sizeof(OutPair));
                count = lp->count;
            }
        } else if (decided && mode == LINES_JSON) {
            decided = 0; /* Python says why the line is refused */
        } else if (decided) {
            outs[count++] = (OutPair){(const uint8_t *)"__CONTENT__", p, 11, (size_t)(e - p)};
        }
        if (!decided) {
            PyObject *line = PyBytes_FromStringAndSize((const char *)p, e - p);
            held = line ? PyObject_CallOneArg(fallback, line) : NULL;
            Py_XDECREF(line);
            if (held == NULL)
                goto done;
            if (held == Py_None) { /* blank after all */
                Py_DECREF(held);
                p = next;
                continue;
            }
            if (!PyDict_Check(held) || PyDict_GET_SIZE(held) > LINES_MAX_PAIRS) {
                Py_DECREF(held);
                PyErr_SetString(PyExc_TypeError,
                                "the fallback must return None or a dict of at most 256 "
                                "str -> str");
                goto done;
            }
            Py_ssize_t it = 0;
            PyObject *k, *v;
            while (PyDict_Next(held, &it, &k, &v)) {
                Py_ssize_t kl, vl;
                const char *ks = PyUnicode_Check(k) ? PyUnicode_AsUTF8AndSize(k, &kl) : NULL;
                const char *vs = ks && PyUnicode_Check(v) ? PyUnicode_AsUTF8AndSize(v, &vl)
                                                          : NULL;
                if (vs == NULL) {
                    if (!PyErr_Occurred())
                        PyErr_SetString(PyExc_TypeError, "contents must be str -> str");
                    Py_DECREF(held);
                    goto done;
                }
                outs[count++] = (OutPair){(const uint8_t *)ks, (const uint8_t *)vs,
                                          (size_t)kl, (size_t)vl};
            }
        }
        size_t size = 0;
        for (size_t i = 0; i < count; i++)
            size += outs[i].value_len;
        if ((have_logs || logs) &&
            (logs >= logs_room || (size_t)value_bytes + size > (size_t)value_room)) {
            Py_XDECREF(held);
            full = 1;
            break; /* the line starts the next batch */
        }
        int rc = put_log(&out, wall_ms(), outs, count);
        Py_XDECREF(held);
        if (rc != WIRE_OK) {
            PyErr_NoMemory();
            goto done;
        }
        logs++;
        value_bytes += (Py_ssize_t)size;
        p = next;
    }
    PyObject *data = PyBytes_FromStringAndSize((const char *)out.data, (Py_ssize_t)out.len);
    if (data != NULL) {
        result = Py_BuildValue("(NnnnO)", data, logs, value_bytes, (Py_ssize_t)(p - base),
                               full ? Py_True : Py_False);
    }
done:
    if (lp != NULL)
        free(lp->scratch.data);
    free(lp);
    free(outs);
    free(out.data);
    PyBuffer_Release(&view);
    return result;
}

/* --- configure ------------------------------------------------------------------------- */

/* Every tag the walks read must be the schema's, and the schema must hold no field they do
 * not know of: a new string field would go unchecked for UTF-8 by the scanner. */
static int check_tags(PyObject *tags)
{
    if (!PyDict_Check(tags)) {
        PyErr_SetString(PyExc_TypeError, "tags must be a dict of \"Message.field\" -> tag");
        return -1;
    }
    for (size_t i = 0; i < SCHEMA_TAG_COUNT; i++) {
        PyObject *value = PyDict_GetItemString(tags, SCHEMA_TAGS[i].name);
        long long tag = value != NULL && PyLong_Check(value) ? PyLong_AsLongLong(value) : -1;
        if (tag == -1 && PyErr_Occurred())
            return -1;
        if (tag != (long long)SCHEMA_TAGS[i].tag) {
            PyErr_Format(PyExc_ValueError,
                         "_wire.c reads %s as tag %u (field %u, wire type %u) but the schema "
                         "has %R: _wire.c must follow ingest/schema.py",
                         SCHEMA_TAGS[i].name, SCHEMA_TAGS[i].tag, SCHEMA_TAGS[i].tag >> 3,
                         SCHEMA_TAGS[i].tag & 7, value != NULL ? value : Py_None);
            return -1;
        }
    }
    if ((size_t)PyDict_Size(tags) != SCHEMA_TAG_COUNT) {
        PyErr_Format(PyExc_ValueError,
                     "the schema has %zd fields, _wire.c knows %zu: _wire.c must follow "
                     "ingest/schema.py",
                     PyDict_Size(tags), (size_t)SCHEMA_TAG_COUNT);
        return -1;
    }
    return 0;
}

/* The allowed keys as UTF-8, copied into one block owned by the module state. */
static int copy_keys(PyObject *keys, Config *cfg)
{
    PyObject *seq = PySequence_Fast(keys, "allowed_underscore_keys must be a sequence of str");
    if (seq == NULL)
        return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    size_t bytes = (size_t)count * sizeof(Span);
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t len;
        if (PyUnicode_AsUTF8AndSize(PySequence_Fast_GET_ITEM(seq, i), &len) == NULL) {
            Py_DECREF(seq);
            return -1;
        }
        bytes += (size_t)len;
    }
    Span *spans = malloc(bytes ? bytes : 1);
    if (spans == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    uint8_t *at = (uint8_t *)(spans + count);
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t len;
        const char *key = PyUnicode_AsUTF8AndSize(PySequence_Fast_GET_ITEM(seq, i), &len);
        memcpy(at, key, (size_t)len);
        spans[i] = (Span){at, (size_t)len};
        at += len;
    }
    Py_DECREF(seq);
    cfg->allowed_keys = spans;
    cfg->allowed_count = (size_t)count;
    return 0;
}

static PyObject *configure(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"max_logs_per_group", "max_value_bytes", "max_group_value_bytes",
                             "allowed_underscore_keys", "time_ms_low", "time_ms_high",
                             "log_time_min", "log_time_max", "tags", NULL};
    Config *cfg = PyModule_GetState(self);
    long long logs, value, group, low, high, time_min, time_max;
    PyObject *keys, *tags;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "LLLOLLLLO:configure", kwlist, &logs,
                                     &value, &group, &keys, &low, &high, &time_min, &time_max,
                                     &tags))
        return NULL;
    /* The walks read the state without the GIL: it must never change under them. */
    if (cfg->configured) {
        PyErr_SetString(PyExc_RuntimeError, "cls_shipper._wire is configured already");
        return NULL;
    }
    if (logs <= 0 || value <= 0 || group <= 0 || low <= 0 || high <= low) {
        PyErr_SetString(PyExc_ValueError, "the limits must be positive and time_ms_low < "
                                          "time_ms_high");
        return NULL;
    }
    /* Every accepted time must have a millisecond value in 64 bits: no negative ones. */
    if (time_min < 0 || time_max < time_min) {
        PyErr_SetString(PyExc_ValueError, "log_time_min must be at least 0 and at most "
                                          "log_time_max");
        return NULL;
    }
    if (check_tags(tags) < 0 || copy_keys(keys, cfg) < 0)
        return NULL;
    cfg->max_logs_per_group = (uint64_t)logs;
    cfg->max_value_bytes = (uint64_t)value;
    cfg->max_group_value_bytes = (uint64_t)group;
    cfg->time_ms_low = low;
    cfg->time_ms_high = high;
    cfg->log_time_min = time_min;
    cfg->log_time_max = time_max;
    cfg->configured = 1;
    Py_RETURN_NONE;
}

/* --- module ---------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "configure(*, max_logs_per_group, max_value_bytes, max_group_value_bytes, "
     "allowed_underscore_keys, time_ms_low, time_ms_high, log_time_min, log_time_max, tags)"
     "\n\nHand the module the CLS limits, the Log.time units and range, and the schema's "
     "tags (checked against the C walks'); once, before any walk. ingest/native.py does it "
     "on import."},
    {"scan_log_group_list", scan_log_group_list, METH_O,
     "scan_log_group_list(buf) -> (logs, groups)\n\nValidate an uploaded LogGroupList as "
     "ingest.decode.check_protobuf does; raise ScanError(kind, message) or Unsupported."},
    {"encode_json_lines", encode_json_lines, METH_VARARGS,
     "encode_json_lines(buf, client_ip, meta_fields, enable_tag) -> (data, ends, group_ends)"
     "\n\nA stored chunk as JSON lines (JsonType 0); ends[i] is the end offset of record i, "
     "group_ends[j] the number of records up to the end of non-empty group j. Raises "
     "Unsupported where the Python encoder must decide."},
    {"encode_lines", encode_lines, METH_VARARGS,
     "encode_lines(buf, start, eof, mode, logs_room, value_room, have_logs, fallback) -> "
     "(logs_bytes, logs, value_bytes, end, full)\n\nText lines from buf[start:] as encoded "
     "LogGroup.logs fields (mode 0 auto, 1 raw, 2 json), until a batch is full or no whole "
     "line is left; fallback(line) -> dict | None decides the lines the walk leaves to "
     "Python."},
    {NULL, NULL, 0, NULL},
};

static int module_exec(PyObject *module)
{
    init_char_class();
    if (ScanError == NULL)
        ScanError = PyErr_NewExceptionWithDoc(
        "cls_shipper._wire.ScanError",
        "An upload the CLS rules refuse: args are (kind, message), kind an ErrorKind code.",
        PyExc_ValueError, NULL);
    if (ScanError == NULL || PyModule_AddObjectRef(module, "ScanError", ScanError) < 0)
        return -1;
    if (Unsupported == NULL)
        Unsupported = PyErr_NewExceptionWithDoc(
        "cls_shipper._wire.Unsupported",
        "Input the C walk leaves to the Python path (whose outcome then decides).",
        PyExc_ValueError, NULL);
    if (Unsupported == NULL || PyModule_AddObjectRef(module, "Unsupported", Unsupported) < 0)
        return -1;
    return 0;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL},
};

static void module_free(void *module)
{
    Config *cfg = PyModule_GetState((PyObject *)module);
    if (cfg != NULL)
        free(cfg->allowed_keys);
}

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_wire", "Fast walks over CLS LogGroupList protobuf bytes.",
    sizeof(Config), methods, slots, NULL, NULL, module_free,
};

PyMODINIT_FUNC PyInit__wire(void)
{
    return PyModuleDef_Init(&module_def);
}
