/* Chat templates: the lexer. Splits the source into data and tags as Jinja's lexer does with
 * trim_blocks and lstrip_blocks on, and tags into names, literals and operators. */
#include "template_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct lexer {
    tpl_arena *ar;
    const char *s;
    size_t n;
    tpl_token *toks;
    size_t ntok, cap;
    char brackets[TPL_MAX_BRACKETS];
    size_t depth;
} lexer;

static lnx_status emit(lexer *lx, const tpl_token *t)
{
    if (lx->ntok == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 256;
        tpl_token *p = realloc(lx->toks, cap * sizeof *p);
        if (!p)
            return lnx_error(LNX_E_NOMEM, "template: out of memory");
        lx->toks = p;
        lx->cap = cap;
    }
    lx->toks[lx->ntok++] = *t;
    return LNX_OK;
}

static lnx_status emit_simple(lexer *lx, uint8_t kind, uint8_t op, size_t pos)
{
    tpl_token t = {.kind = kind, .op = op, .pos = pos};
    return emit(lx, &t);
}

static lnx_status emit_data(lexer *lx, size_t from, size_t to)
{
    if (to <= from)
        return LNX_OK;
    tpl_token t = {.kind = TK_DATA, .pos = from, .s = lx->s + from, .n = to - from};
    return emit(lx, &t);
}

static int starts(const lexer *lx, size_t i, const char *lit)
{
    size_t k = strlen(lit);
    return i <= lx->n && lx->n - i >= k && memcmp(lx->s + i, lit, k) == 0;
}

static size_t skip_space(const lexer *lx, size_t i)
{
    size_t k;
    while ((k = tpl_space_at(lx->s, lx->n, i)) != 0)
        i += k;
    return i;
}

/* End of the data text [from, to) that precedes a tag whose whitespace sign is `sign`:
 * '-' strips all whitespace, otherwise lstrip_blocks removes spaces and tabs between the start
 * of the line and a block or comment tag. */
static size_t strip_text(const lexer *lx, size_t from, size_t to, char sign, int lstrip, int line_starting)
{
    if (sign == '-') {
        size_t k;
        while (to > from && (k = tpl_space_before(lx->s, to)) != 0 && to - k >= from)
            to -= k;
        return to;
    }
    if (sign == '+' || !lstrip)
        return to;
    size_t line = to;
    while (line > from && lx->s[line - 1] != '\n')
        line--;
    if (line == from && !line_starting)
        return to;
    for (size_t i = line; i < to; i++)
        if (lx->s[i] != ' ' && lx->s[i] != '\t')
            return to;
    return line;
}

/* ---- literals ------------------------------------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the body of a string literal as Jinja does (Python's unicode-escape after
 * backslash-replacing non-ASCII characters, so unknown escapes stay as written). */
static lnx_status decode_string(lexer *lx, size_t start, size_t end, tpl_str *out)
{
    const char *s = lx->s;
    tpl_buf b = {.ar = lx->ar, .limit = LNX_TEMPLATE_MAX_SOURCE * 4};
    lnx_status st = LNX_OK;
    size_t k = start;
    while (k < end && st == LNX_OK) {
        if (s[k] != '\\' || k + 1 >= end) {
            size_t run = k;
            while (run < end && s[run] != '\\')
                run++;
            if (run == k)
                run = k + 1;
            st = tpl_buf_put(&b, s + k, run - k);
            k = run;
            continue;
        }
        char d = s[k + 1];
        size_t at = k;
        k += 2;
        uint32_t cp = 0;
        int digits = 0;
        switch (d) {
        case '\n': break;
        case '\\': st = tpl_buf_putc(&b, '\\'); break;
        case '\'': st = tpl_buf_putc(&b, '\''); break;
        case '"': st = tpl_buf_putc(&b, '"'); break;
        case 'a': st = tpl_buf_putc(&b, '\a'); break;
        case 'b': st = tpl_buf_putc(&b, '\b'); break;
        case 'f': st = tpl_buf_putc(&b, '\f'); break;
        case 'n': st = tpl_buf_putc(&b, '\n'); break;
        case 'r': st = tpl_buf_putc(&b, '\r'); break;
        case 't': st = tpl_buf_putc(&b, '\t'); break;
        case 'v': st = tpl_buf_putc(&b, '\v'); break;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        case 'N': return tpl_error_at(s, at, LNX_E_TEMPLATE, "\\N{...} escapes are not supported");
        default:
            if (d >= '0' && d <= '7') {
                cp = (uint32_t)(d - '0');
                for (int j = 0; j < 2 && k < end && s[k] >= '0' && s[k] <= '7'; j++)
                    cp = cp * 8 + (uint32_t)(s[k++] - '0');
                st = tpl_buf_put_cp(&b, cp);
            } else if ((unsigned char)d >= 0x80) {
                /* "\é" reads as "\\xe9": a backslash, then the escape spelled out */
                size_t j = k - 1;
                uint32_t c = tpl_utf8_next(s, end, &j);
                char esc[16];
                int len;
                if (c < 0x100)
                    len = snprintf(esc, sizeof esc, "\\x%02x", (unsigned)c);
                else if (c < 0x10000)
                    len = snprintf(esc, sizeof esc, "\\u%04x", (unsigned)c);
                else
                    len = snprintf(esc, sizeof esc, "\\U%08x", (unsigned)c);
                st = tpl_buf_put(&b, esc, (size_t)len);
                k = j;
            } else {
                st = tpl_buf_putc(&b, '\\');
                if (st == LNX_OK)
                    st = tpl_buf_putc(&b, d);
            }
            break;
        }
        if (digits) {
            for (int j = 0; j < digits; j++) {
                int h = k < end ? hex_value(s[k]) : -1;
                if (h < 0)
                    return tpl_error_at(s, at, LNX_E_TEMPLATE, "truncated \\%c escape in string literal", d);
                cp = cp * 16 + (uint32_t)h;
                k++;
            }
            if (cp > 0x10FFFF)
                return tpl_error_at(s, at, LNX_E_TEMPLATE, "illegal Unicode character in string literal");
            if (cp >= 0xD800 && cp <= 0xDFFF)
                return tpl_error_at(s, at, LNX_E_TEMPLATE, "lone surrogate in string literal");
            st = tpl_buf_put_cp(&b, cp);
        }
    }
    if (st != LNX_OK)
        return st;
    out->p = b.p ? b.p : "";
    out->n = b.n;
    return LNX_OK;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* (\d+_)*\d+ starting at i (a digit); returns the end. */
static size_t digit_run(const lexer *lx, size_t i)
{
    while (i < lx->n && is_digit(lx->s[i]))
        i++;
    while (i + 1 < lx->n && lx->s[i] == '_' && is_digit(lx->s[i + 1])) {
        i++;
        while (i < lx->n && is_digit(lx->s[i]))
            i++;
    }
    return i;
}

static lnx_status lex_number(lexer *lx, size_t *pi)
{
    const char *s = lx->s;
    size_t i = *pi, n = lx->n;
    if (!(i > 0 && s[i - 1] == '.')) {
        size_t j = digit_run(lx, i);
        int is_float = 0;
        if (j + 1 < n && s[j] == '.' && is_digit(s[j + 1])) {
            j = digit_run(lx, j + 1);
            is_float = 1;
        }
        if (j < n && (s[j] == 'e' || s[j] == 'E')) {
            size_t k = j + 1;
            if (k < n && (s[k] == '+' || s[k] == '-'))
                k++;
            if (k < n && is_digit(s[k])) {
                j = digit_run(lx, k);
                is_float = 1;
            }
        }
        if (is_float) {
            char tmp[128];
            size_t m = 0;
            for (size_t k = i; k < j && m + 1 < sizeof tmp; k++)
                if (s[k] != '_')
                    tmp[m++] = s[k];
            tmp[m] = '\0';
            if (j - i >= sizeof tmp)
                return tpl_error_at(s, i, LNX_E_TEMPLATE, "number literal too long");
            tpl_token t = {.kind = TK_FLOAT, .pos = i, .f = strtod(tmp, NULL)};
            *pi = j;
            return emit(lx, &t);
        }
    }
    int base = 10;
    size_t j = i;
    if (s[i] == '0' && i + 1 < n) {
        char b = (char)(s[i + 1] | 0x20);
        int cand = b == 'x' ? 16 : b == 'o' ? 8 : b == 'b' ? 2 : 0;
        size_t k = i + 2;
        if (k < n && s[k] == '_')
            k++;
        int h = cand && k < n ? hex_value(s[k]) : -1;
        if (h >= 0 && h < cand) {
            base = cand;
            j = i + 2;
        }
    }
    uint64_t v = 0;
    int overflow = 0;
    if (base == 10 && s[i] == '0') {
        j = i + 1;
        for (;;) {
            size_t k = j + (j < n && s[j] == '_');
            if (k >= n || s[k] != '0')
                break;
            j = k + 1;
        }
    } else {
        for (;;) {
            size_t k = j + (j > i && j < n && s[j] == '_');
            int h = k < n ? hex_value(s[k]) : -1;
            if (h < 0 || h >= base)
                break;
            if (v > (UINT64_MAX - (uint64_t)h) / (uint64_t)base)
                overflow = 1;
            v = v * (uint64_t)base + (uint64_t)h;
            j = k + 1;
        }
    }
    if (overflow || v > (uint64_t)INT64_MAX)
        return tpl_error_at(s, i, LNX_E_TEMPLATE, "integer literal too large");
    tpl_token t = {.kind = TK_INT, .pos = i, .i = (int64_t)v};
    *pi = j;
    return emit(lx, &t);
}

/* ---- operators ------------------------------------------------------------------------------ */

static const struct {
    const char *text;
    uint8_t op;
} operators[] = {
    {"**", OP_POW}, {"//", OP_FLOORDIV}, {"==", OP_EQ}, {"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE},
    {"+", OP_ADD}, {"-", OP_SUB}, {"*", OP_MUL}, {"/", OP_DIV}, {"%", OP_MOD}, {"~", OP_TILDE},
    {"<", OP_LT}, {">", OP_GT}, {"=", OP_ASSIGN}, {".", OP_DOT}, {",", OP_COMMA}, {":", OP_COLON},
    {"|", OP_PIPE}, {"(", OP_LPAREN}, {")", OP_RPAREN}, {"[", OP_LBRACKET}, {"]", OP_RBRACKET},
    {"{", OP_LBRACE}, {"}", OP_RBRACE},
};

static lnx_status lex_operator(lexer *lx, size_t *pi)
{
    size_t i = *pi;
    for (size_t k = 0; k < sizeof operators / sizeof operators[0]; k++) {
        if (!starts(lx, i, operators[k].text))
            continue;
        char c = lx->s[i];
        if (c == '(' || c == '[' || c == '{') {
            if (lx->depth == TPL_MAX_BRACKETS)
                return tpl_error_at(lx->s, i, LNX_E_LIMIT, "too many nested brackets");
            lx->brackets[lx->depth++] = c;
        } else if (c == ')' || c == ']' || c == '}') {
            char want = c == ')' ? '(' : c == ']' ? '[' : '{';
            if (lx->depth == 0)
                return tpl_error_at(lx->s, i, LNX_E_TEMPLATE, "unexpected '%c'", c);
            char open = lx->brackets[lx->depth - 1];
            if (open != want)
                return tpl_error_at(lx->s, i, LNX_E_TEMPLATE, "unexpected '%c', expected '%c'", c,
                                    open == '(' ? ')' : open == '[' ? ']' : '}');
            lx->depth--;
        }
        *pi = i + strlen(operators[k].text);
        return emit_simple(lx, TK_OP, operators[k].op, i);
    }
    unsigned char c = (unsigned char)lx->s[i];
    if (c >= 0x20 && c < 0x7F)
        return tpl_error_at(lx->s, i, LNX_E_TEMPLATE, "unexpected character '%c'", c);
    return tpl_error_at(lx->s, i, LNX_E_TEMPLATE, "unexpected character (byte 0x%02x)", c);
}

/* ASCII letters and underscore; bytes of non-ASCII characters count as letters so that Unicode
 * identifiers lex as names (whitespace is skipped before names are tried). */
static int is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (unsigned char)c >= 0x80;
}

/* Tokens of one {{ }} or {% %} tag, from just after its opening to just after its end; *line_nl
 * tells whether what was consumed last ended a line (for lstrip_blocks). */
static lnx_status lex_tag(lexer *lx, size_t tag_pos, int block, size_t *pi, int *line_nl)
{
    const char *s = lx->s;
    size_t i = *pi, n = lx->n;
    lx->depth = 0;
    for (;;) {
        i = skip_space(lx, i);
        if (i >= n)
            return tpl_error_at(s, tag_pos, LNX_E_TEMPLATE, "unexpected end of template: %s tag is not closed",
                                block ? "'{%'" : "'{{'");
        size_t end = 0;
        if (lx->depth == 0) {
            if (block) {
                if (starts(lx, i, "-%}"))
                    end = skip_space(lx, i + 3);
                else if (starts(lx, i, "+%}"))
                    end = i + 3;
                else if (starts(lx, i, "%}"))
                    end = i + 2 + (i + 2 < n && s[i + 2] == '\n');
            } else {
                if (starts(lx, i, "-}}"))
                    end = skip_space(lx, i + 3);
                else if (starts(lx, i, "}}"))
                    end = i + 2;
            }
        }
        if (end) {
            *pi = end;
            *line_nl = s[end - 1] == '\n';
            return emit_simple(lx, block ? TK_BLOCK_END : TK_VAR_END, OP_NONE, i);
        }
        char c = s[i];
        lnx_status st;
        if (is_name_start(c)) {
            size_t j = i + 1;
            while (j < n && (is_name_start(s[j]) || is_digit(s[j])) && !tpl_space_at(s, n, j))
                j++;
            tpl_token t = {.kind = TK_NAME, .pos = i, .s = s + i, .n = j - i};
            st = emit(lx, &t);
            i = j;
        } else if (is_digit(c)) {
            st = lex_number(lx, &i);
        } else if (c == '\'' || c == '"') {
            size_t j = i + 1;
            while (j < n && s[j] != c)
                j += s[j] == '\\' ? 2 : 1;
            if (j >= n)
                return tpl_error_at(s, i, LNX_E_TEMPLATE, "unterminated string literal");
            tpl_token t = {.kind = TK_STRING, .pos = i};
            tpl_str str = {0};
            st = decode_string(lx, i + 1, j, &str);
            if (st != LNX_OK)
                return st;
            t.s = str.p;
            t.n = str.n;
            st = emit(lx, &t);
            i = j + 1;
        } else {
            st = lex_operator(lx, &i);
        }
        if (st != LNX_OK)
            return st;
    }
}

/* {% raw %}: *body receives where the raw text starts when the tag at q (after "{%" and its
 * sign) is a raw opening. */
static int raw_begin(const lexer *lx, size_t q, size_t *body)
{
    size_t j = skip_space(lx, q);
    if (!starts(lx, j, "raw"))
        return 0;
    j = skip_space(lx, j + 3);
    if (starts(lx, j, "-%}")) {
        *body = skip_space(lx, j + 3);
        return 1;
    }
    if (starts(lx, j, "%}")) {
        *body = j + 2;
        return 1;
    }
    return 0;
}

/* Finds {% endraw %} from i: *at is its "{%", *sign its whitespace sign, *end just after it. */
static int raw_end(const lexer *lx, size_t i, size_t *at, char *sign, size_t *end)
{
    for (; i + 1 < lx->n; i++) {
        if (lx->s[i] != '{' || lx->s[i + 1] != '%')
            continue;
        size_t j = i + 2;
        char sg = 0;
        if (j < lx->n && (lx->s[j] == '-' || lx->s[j] == '+'))
            sg = lx->s[j++];
        j = skip_space(lx, j);
        if (!starts(lx, j, "endraw"))
            continue;
        j = skip_space(lx, j + 6);
        if (starts(lx, j, "+%}"))
            j += 3;
        else if (starts(lx, j, "-%}"))
            j = skip_space(lx, j + 3);
        else if (starts(lx, j, "%}"))
            j += 2 + (j + 2 < lx->n && lx->s[j + 2] == '\n');
        else
            continue;
        *at = i;
        *sign = sg;
        *end = j;
        return 1;
    }
    return 0;
}

static lnx_status lex_all(lexer *lx)
{
    const char *s = lx->s;
    size_t n = lx->n, i = 0;
    int line_starting = 1;
    while (i < n) {
        size_t p = i;
        while (p + 1 < n && !(s[p] == '{' && (s[p + 1] == '{' || s[p + 1] == '%' || s[p + 1] == '#')))
            p++;
        if (p + 1 >= n)
            return emit_data(lx, i, n);
        char kind = s[p + 1];
        size_t q = p + 2;
        char sign = 0;
        if (q < n && (s[q] == '-' || s[q] == '+'))
            sign = s[q++];
        size_t body = 0;
        int is_raw = kind == '%' && raw_begin(lx, q, &body);
        lnx_status st = emit_data(lx, i, strip_text(lx, i, p, sign, kind != '{', line_starting));
        if (st != LNX_OK)
            return st;
        if (kind == '#') {
            size_t e = q;
            while (e + 1 < n && !(s[e] == '#' && s[e + 1] == '}'))
                e++;
            if (e + 1 >= n)
                return tpl_error_at(s, p, LNX_E_TEMPLATE, "missing end of comment tag");
            if (e > q && s[e - 1] == '-')
                i = skip_space(lx, e + 2);
            else if (e > q && s[e - 1] == '+')
                i = e + 2;
            else
                i = e + 2 + (e + 2 < n && s[e + 2] == '\n');
            line_starting = s[i - 1] == '\n';
        } else if (is_raw) {
            size_t at, end;
            char sg;
            if (!raw_end(lx, body, &at, &sg, &end))
                return tpl_error_at(s, p, LNX_E_TEMPLATE, "missing end of raw directive");
            int nl = s[body - 1] == '\n';
            st = emit_data(lx, body, strip_text(lx, body, at, sg, 1, nl));
            if (st != LNX_OK)
                return st;
            i = end;
            line_starting = s[i - 1] == '\n';
        } else {
            st = emit_simple(lx, kind == '%' ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, OP_NONE, p);
            if (st == LNX_OK) {
                i = q;
                st = lex_tag(lx, p, kind == '%', &i, &line_starting);
            }
            if (st != LNX_OK)
                return st;
        }
    }
    return LNX_OK;
}

lnx_status tpl_lex(tpl_arena *ar, const char *src, size_t len, tpl_token **out, size_t *count)
{
    lexer lx = {.ar = ar, .s = src, .n = len};
    *out = NULL;
    *count = 0;
    lnx_status st = lex_all(&lx);
    if (st == LNX_OK)
        st = emit_simple(&lx, TK_EOF, OP_NONE, len);
    if (st != LNX_OK) {
        free(lx.toks);
        return st;
    }
    *out = lx.toks;
    *count = lx.ntok;
    return LNX_OK;
}
