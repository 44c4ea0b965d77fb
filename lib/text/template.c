/* Chat templates: the parser (tokens to syntax tree), following the grammar of Jinja's parser,
 * and lnx_template_parse / lnx_template_free. */
#include "template_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    tpl_arena *ar;
    const char *src;
    const tpl_token *t;
    size_t i, n;
    int depth;
    int loops;
} parser;

typedef struct nvec {
    tpl_node **v;
    size_t n, cap;
} nvec;

static const tpl_token *cur(const parser *p)
{
    return &p->t[p->i];
}

static const tpl_token *peek(const parser *p)
{
    return &p->t[p->i + 1 < p->n ? p->i + 1 : p->n - 1];
}

static void adv(parser *p)
{
    if (p->i + 1 < p->n)
        p->i++;
}

static int tok_is_name(const tpl_token *t, const char *name)
{
    return t->kind == TK_NAME && t->n == strlen(name) && memcmp(t->s, name, t->n) == 0;
}

static int tok_is_op(const tpl_token *t, int op)
{
    return t->kind == TK_OP && t->op == op;
}

static const char *op_text(int op)
{
    static const char *const text[] = {
        [OP_ADD] = "+", [OP_SUB] = "-", [OP_MUL] = "*", [OP_DIV] = "/", [OP_FLOORDIV] = "//",
        [OP_MOD] = "%", [OP_POW] = "**", [OP_TILDE] = "~", [OP_EQ] = "==", [OP_NE] = "!=",
        [OP_LT] = "<", [OP_GT] = ">", [OP_LE] = "<=", [OP_GE] = ">=", [OP_ASSIGN] = "=",
        [OP_DOT] = ".", [OP_COMMA] = ",", [OP_COLON] = ":", [OP_PIPE] = "|", [OP_LPAREN] = "(",
        [OP_RPAREN] = ")", [OP_LBRACKET] = "[", [OP_RBRACKET] = "]", [OP_LBRACE] = "{",
        [OP_RBRACE] = "}",
    };
    return op > 0 && op < (int)(sizeof text / sizeof text[0]) && text[op] ? text[op] : "?";
}

static void describe(const tpl_token *t, char *buf, size_t size)
{
    switch (t->kind) {
    case TK_EOF: snprintf(buf, size, "end of template"); break;
    case TK_DATA: snprintf(buf, size, "template text"); break;
    case TK_VAR_BEGIN: snprintf(buf, size, "'{{'"); break;
    case TK_VAR_END: snprintf(buf, size, "end of print statement '}}'"); break;
    case TK_BLOCK_BEGIN: snprintf(buf, size, "'{%%'"); break;
    case TK_BLOCK_END: snprintf(buf, size, "end of statement block '%%}'"); break;
    case TK_NAME: snprintf(buf, size, "'%.*s'", (int)(t->n > 60 ? 60 : t->n), t->s); break;
    case TK_STRING: snprintf(buf, size, "string literal"); break;
    case TK_INT: snprintf(buf, size, "integer"); break;
    case TK_FLOAT: snprintf(buf, size, "float"); break;
    default: snprintf(buf, size, "'%s'", op_text(t->op)); break;
    }
}

static lnx_status fail_unexpected(const parser *p, const char *expected)
{
    char what[96];
    describe(cur(p), what, sizeof what);
    if (expected)
        return tpl_error_at(p->src, cur(p)->pos, LNX_E_TEMPLATE, "expected %s, got %s", expected, what);
    return tpl_error_at(p->src, cur(p)->pos, LNX_E_TEMPLATE, "unexpected %s", what);
}

static lnx_status expect_op(parser *p, int op)
{
    if (!tok_is_op(cur(p), op)) {
        char want[16];
        snprintf(want, sizeof want, "'%s'", op_text(op));
        return fail_unexpected(p, want);
    }
    adv(p);
    return LNX_OK;
}

static lnx_status expect_kind(parser *p, int kind, const char *what)
{
    if (cur(p)->kind != kind)
        return fail_unexpected(p, what);
    adv(p);
    return LNX_OK;
}

static lnx_status enter(parser *p)
{
    if (++p->depth > TPL_MAX_PARSE_DEPTH)
        return tpl_error_at(p->src, cur(p)->pos, LNX_E_LIMIT, "template nested too deeply (more than %d levels)",
                            TPL_MAX_PARSE_DEPTH);
    return LNX_OK;
}

static lnx_status chain(const parser *p, size_t *count)
{
    if (++*count > TPL_MAX_CHAIN)
        return tpl_error_at(p->src, cur(p)->pos, LNX_E_LIMIT, "expression too long (more than %d chained operations)",
                            TPL_MAX_CHAIN);
    return LNX_OK;
}

static lnx_status new_node(parser *p, int kind, size_t pos, tpl_node **out)
{
    tpl_node *nd = tpl_alloc(p->ar, sizeof *nd);
    if (!nd)
        return tpl_arena_status();
    memset(nd, 0, sizeof *nd);
    nd->kind = (uint8_t)kind;
    nd->pos = pos;
    *out = nd;
    return LNX_OK;
}

static lnx_status push(parser *p, nvec *v, tpl_node *x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        tpl_node **nv = tpl_alloc_n(p->ar, cap, sizeof *nv);
        if (!nv)
            return tpl_arena_status();
        if (v->n)
            memcpy(nv, v->v, v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return LNX_OK;
}

static lnx_status binary(parser *p, int kind, int op, size_t pos, tpl_node *a, tpl_node *b, tpl_node **out)
{
    LNX_TRY(new_node(p, kind, pos, out));
    (*out)->op = (uint8_t)op;
    (*out)->a = a;
    (*out)->b = b;
    return LNX_OK;
}

/* ---- expressions ---------------------------------------------------------------------------- */

static lnx_status parse_expression(parser *p, int with_condexpr, tpl_node **out);
static lnx_status parse_tuple(parser *p, int with_condexpr, int explicit_parens, const char *extra_end,
                              tpl_node **out);
static lnx_status parse_unary(parser *p, int with_filter, tpl_node **out);
static lnx_status parse_primary(parser *p, tpl_node **out);
static lnx_status parse_postfix(parser *p, tpl_node **node);

static lnx_status parse_or(parser *p, tpl_node **out);

static lnx_status parse_condexpr(parser *p, tpl_node **out)
{
    tpl_node *e1 = NULL;
    size_t count = 0;
    LNX_TRY(parse_or(p, &e1));
    while (tok_is_name(cur(p), "if")) {
        size_t pos = cur(p)->pos;
        tpl_node *cond = NULL, *e3 = NULL, *nd = NULL;
        LNX_TRY(chain(p, &count));
        adv(p);
        LNX_TRY(parse_or(p, &cond));
        if (tok_is_name(cur(p), "else")) {
            adv(p);
            LNX_TRY(enter(p));
            LNX_TRY(parse_condexpr(p, &e3));
            p->depth--;
        }
        LNX_TRY(new_node(p, N_COND, pos, &nd));
        nd->a = cond;
        nd->b = e1;
        nd->c = e3;
        e1 = nd;
    }
    *out = e1;
    return LNX_OK;
}

static lnx_status parse_not(parser *p, tpl_node **out);

static lnx_status parse_and(parser *p, tpl_node **out)
{
    tpl_node *left = NULL, *right = NULL;
    size_t count = 0;
    LNX_TRY(parse_not(p, &left));
    while (tok_is_name(cur(p), "and")) {
        size_t pos = cur(p)->pos;
        LNX_TRY(chain(p, &count));
        adv(p);
        LNX_TRY(parse_not(p, &right));
        LNX_TRY(binary(p, N_AND, OP_NONE, pos, left, right, &left));
    }
    *out = left;
    return LNX_OK;
}

static lnx_status parse_or(parser *p, tpl_node **out)
{
    tpl_node *left = NULL, *right = NULL;
    size_t count = 0;
    LNX_TRY(parse_and(p, &left));
    while (tok_is_name(cur(p), "or")) {
        size_t pos = cur(p)->pos;
        LNX_TRY(chain(p, &count));
        adv(p);
        LNX_TRY(parse_and(p, &right));
        LNX_TRY(binary(p, N_OR, OP_NONE, pos, left, right, &left));
    }
    *out = left;
    return LNX_OK;
}

static lnx_status parse_math1(parser *p, tpl_node **out);

static lnx_status parse_compare(parser *p, tpl_node **out)
{
    tpl_node *expr = NULL;
    nvec ops = {0};
    LNX_TRY(parse_math1(p, &expr));
    for (;;) {
        const tpl_token *t = cur(p);
        size_t pos = t->pos;
        int op;
        if (t->kind == TK_OP && t->op >= OP_EQ && t->op <= OP_GE) {
            op = t->op;
            adv(p);
        } else if (tok_is_name(t, "in")) {
            op = OP_IN;
            adv(p);
        } else if (tok_is_name(t, "not") && tok_is_name(peek(p), "in")) {
            op = OP_NOTIN;
            adv(p);
            adv(p);
        } else {
            break;
        }
        if (ops.n >= TPL_MAX_CHAIN)
            return tpl_error_at(p->src, pos, LNX_E_LIMIT, "too many chained comparisons");
        tpl_node *rhs = NULL, *nd = NULL;
        LNX_TRY(parse_math1(p, &rhs));
        LNX_TRY(binary(p, N_OPERAND, op, pos, rhs, NULL, &nd));
        LNX_TRY(push(p, &ops, nd));
    }
    if (ops.n == 0) {
        *out = expr;
        return LNX_OK;
    }
    LNX_TRY(new_node(p, N_COMPARE, expr->pos, out));
    (*out)->a = expr;
    (*out)->kids = ops.v;
    (*out)->nkids = ops.n;
    return LNX_OK;
}

static lnx_status parse_not(parser *p, tpl_node **out)
{
    if (tok_is_name(cur(p), "not")) {
        size_t pos = cur(p)->pos;
        tpl_node *x = NULL;
        adv(p);
        LNX_TRY(enter(p));
        LNX_TRY(parse_not(p, &x));
        p->depth--;
        return binary(p, N_NOT, OP_NONE, pos, x, NULL, out);
    }
    return parse_compare(p, out);
}

static lnx_status parse_concat(parser *p, tpl_node **out);

static lnx_status parse_math1(parser *p, tpl_node **out)
{
    tpl_node *left = NULL, *right = NULL;
    size_t count = 0;
    LNX_TRY(parse_concat(p, &left));
    while (tok_is_op(cur(p), OP_ADD) || tok_is_op(cur(p), OP_SUB)) {
        int op = cur(p)->op;
        size_t pos = cur(p)->pos;
        LNX_TRY(chain(p, &count));
        adv(p);
        LNX_TRY(parse_concat(p, &right));
        LNX_TRY(binary(p, N_BINOP, op, pos, left, right, &left));
    }
    *out = left;
    return LNX_OK;
}

static lnx_status parse_math2(parser *p, tpl_node **out);

static lnx_status parse_concat(parser *p, tpl_node **out)
{
    tpl_node *first = NULL, *x = NULL;
    LNX_TRY(parse_math2(p, &first));
    if (!tok_is_op(cur(p), OP_TILDE)) {
        *out = first;
        return LNX_OK;
    }
    nvec args = {0};
    LNX_TRY(push(p, &args, first));
    while (tok_is_op(cur(p), OP_TILDE)) {
        if (args.n > TPL_MAX_CHAIN)
            return tpl_error_at(p->src, cur(p)->pos, LNX_E_LIMIT, "too many '~' in one expression");
        adv(p);
        LNX_TRY(parse_math2(p, &x));
        LNX_TRY(push(p, &args, x));
    }
    LNX_TRY(new_node(p, N_CONCAT, first->pos, out));
    (*out)->kids = args.v;
    (*out)->nkids = args.n;
    return LNX_OK;
}

static lnx_status parse_pow(parser *p, tpl_node **out);

static lnx_status parse_math2(parser *p, tpl_node **out)
{
    tpl_node *left = NULL, *right = NULL;
    size_t count = 0;
    LNX_TRY(parse_pow(p, &left));
    for (;;) {
        const tpl_token *t = cur(p);
        if (!(t->kind == TK_OP && (t->op == OP_MUL || t->op == OP_DIV || t->op == OP_FLOORDIV || t->op == OP_MOD)))
            break;
        int op = t->op;
        size_t pos = t->pos;
        LNX_TRY(chain(p, &count));
        adv(p);
        LNX_TRY(parse_pow(p, &right));
        LNX_TRY(binary(p, N_BINOP, op, pos, left, right, &left));
    }
    *out = left;
    return LNX_OK;
}

static lnx_status parse_pow(parser *p, tpl_node **out)
{
    tpl_node *left = NULL, *right = NULL;
    size_t count = 0;
    LNX_TRY(parse_unary(p, 1, &left));
    while (tok_is_op(cur(p), OP_POW)) {
        size_t pos = cur(p)->pos;
        LNX_TRY(chain(p, &count));
        adv(p);
        LNX_TRY(parse_unary(p, 1, &right));
        LNX_TRY(binary(p, N_BINOP, OP_POW, pos, left, right, &left));
    }
    *out = left;
    return LNX_OK;
}

/* Arguments of a call, filter or test: "(" [expr | name=expr] {"," ...} ")". */
static lnx_status parse_args(parser *p, tpl_node *nd)
{
    nvec args = {0}, kwargs = {0};
    LNX_TRY(expect_op(p, OP_LPAREN));
    while (!tok_is_op(cur(p), OP_RPAREN)) {
        if (args.n || kwargs.n)
            LNX_TRY(expect_op(p, OP_COMMA));
        if (tok_is_op(cur(p), OP_RPAREN))
            break;
        if (args.n + kwargs.n >= TPL_MAX_CHAIN)
            return tpl_error_at(p->src, cur(p)->pos, LNX_E_LIMIT, "too many arguments");
        if (tok_is_op(cur(p), OP_MUL) || tok_is_op(cur(p), OP_POW))
            return tpl_error_at(p->src, cur(p)->pos, LNX_E_TEMPLATE, "*args and **kwargs are not supported");
        tpl_node *x = NULL;
        if (cur(p)->kind == TK_NAME && tok_is_op(peek(p), OP_ASSIGN)) {
            tpl_node *kw = NULL;
            LNX_TRY(new_node(p, N_KWARG, cur(p)->pos, &kw));
            kw->str.p = cur(p)->s;
            kw->str.n = cur(p)->n;
            adv(p);
            adv(p);
            LNX_TRY(parse_expression(p, 1, &x));
            kw->a = x;
            LNX_TRY(push(p, &kwargs, kw));
        } else {
            if (kwargs.n)
                return tpl_error_at(p->src, cur(p)->pos, LNX_E_TEMPLATE,
                                    "positional argument after keyword argument");
            LNX_TRY(parse_expression(p, 1, &x));
            LNX_TRY(push(p, &args, x));
        }
    }
    adv(p);
    nd->kids = args.v;
    nd->nkids = args.n;
    nd->kids2 = kwargs.v;
    nd->nkids2 = kwargs.n;
    return LNX_OK;
}

/* A filter or test name, possibly dotted. */
static lnx_status parse_dotted_name(parser *p, tpl_str *name)
{
    if (cur(p)->kind != TK_NAME)
        return fail_unexpected(p, "a name");
    const char *start = cur(p)->s;
    const char *end = start + cur(p)->n;
    adv(p);
    while (tok_is_op(cur(p), OP_DOT) && peek(p)->kind == TK_NAME) {
        adv(p);
        end = cur(p)->s + cur(p)->n;
        adv(p);
    }
    name->p = start;
    name->n = (size_t)(end - start);
    return LNX_OK;
}

static lnx_status parse_filter(parser *p, tpl_node **node)
{
    size_t pos = cur(p)->pos;
    adv(p);
    tpl_node *nd = NULL;
    LNX_TRY(new_node(p, N_FILTER, pos, &nd));
    size_t name_pos = cur(p)->pos;
    LNX_TRY(parse_dotted_name(p, &nd->str));
    if (!tpl_filter_exists(nd->str.p, nd->str.n))
        return tpl_error_at(p->src, name_pos, LNX_E_TEMPLATE, "unknown filter '%.*s'",
                            (int)(nd->str.n > 60 ? 60 : nd->str.n), nd->str.p);
    if (tok_is_op(cur(p), OP_LPAREN))
        LNX_TRY(parse_args(p, nd));
    nd->a = *node;
    *node = nd;
    return LNX_OK;
}

static lnx_status parse_test(parser *p, tpl_node **node)
{
    size_t pos = cur(p)->pos;
    adv(p);
    tpl_node *nd = NULL;
    LNX_TRY(new_node(p, N_TEST, pos, &nd));
    if (tok_is_name(cur(p), "not")) {
        nd->op = 1;
        adv(p);
    }
    size_t name_pos = cur(p)->pos;
    LNX_TRY(parse_dotted_name(p, &nd->str));
    if (!tpl_test_exists(nd->str.p, nd->str.n))
        return tpl_error_at(p->src, name_pos, LNX_E_TEMPLATE, "unknown test '%.*s'",
                            (int)(nd->str.n > 60 ? 60 : nd->str.n), nd->str.p);
    const tpl_token *t = cur(p);
    if (tok_is_op(t, OP_LPAREN)) {
        LNX_TRY(parse_args(p, nd));
    } else if ((t->kind == TK_NAME || t->kind == TK_STRING || t->kind == TK_INT || t->kind == TK_FLOAT ||
                tok_is_op(t, OP_LBRACKET) || tok_is_op(t, OP_LBRACE)) &&
               !tok_is_name(t, "else") && !tok_is_name(t, "or") && !tok_is_name(t, "and")) {
        if (tok_is_name(t, "is"))
            return tpl_error_at(p->src, t->pos, LNX_E_TEMPLATE, "you cannot chain multiple tests with 'is'");
        tpl_node *arg = NULL;
        LNX_TRY(parse_primary(p, &arg));
        LNX_TRY(parse_postfix(p, &arg));
        tpl_node **kids = tpl_alloc(p->ar, sizeof *kids);
        if (!kids)
            return tpl_arena_status();
        kids[0] = arg;
        nd->kids = kids;
        nd->nkids = 1;
    }
    nd->a = *node;
    *node = nd;
    return LNX_OK;
}

static lnx_status parse_call(parser *p, tpl_node **node)
{
    tpl_node *nd = NULL;
    LNX_TRY(new_node(p, N_CALL, cur(p)->pos, &nd));
    LNX_TRY(parse_args(p, nd));
    nd->a = *node;
    *node = nd;
    return LNX_OK;
}

static lnx_status parse_filter_expr(parser *p, tpl_node **node)
{
    size_t count = 0;
    for (;;) {
        const tpl_token *t = cur(p);
        if (tok_is_op(t, OP_PIPE)) {
            LNX_TRY(chain(p, &count));
            LNX_TRY(parse_filter(p, node));
        } else if (tok_is_name(t, "is")) {
            LNX_TRY(chain(p, &count));
            LNX_TRY(parse_test(p, node));
        } else if (tok_is_op(t, OP_LPAREN)) {
            LNX_TRY(chain(p, &count));
            LNX_TRY(parse_call(p, node));
        } else {
            return LNX_OK;
        }
    }
}

/* One item inside [ ]: an expression or a slice start:stop:step. */
static lnx_status parse_subscribed(parser *p, tpl_node **out)
{
    size_t pos = cur(p)->pos;
    tpl_node *start = NULL, *stop = NULL, *step = NULL;
    if (tok_is_op(cur(p), OP_COLON)) {
        adv(p);
    } else {
        LNX_TRY(parse_expression(p, 1, &start));
        if (!tok_is_op(cur(p), OP_COLON)) {
            *out = start;
            return LNX_OK;
        }
        adv(p);
    }
    if (!tok_is_op(cur(p), OP_RBRACKET) && !tok_is_op(cur(p), OP_COMMA) && !tok_is_op(cur(p), OP_COLON))
        LNX_TRY(parse_expression(p, 1, &stop));
    if (tok_is_op(cur(p), OP_COLON)) {
        adv(p);
        if (!tok_is_op(cur(p), OP_RBRACKET) && !tok_is_op(cur(p), OP_COMMA))
            LNX_TRY(parse_expression(p, 1, &step));
    }
    LNX_TRY(new_node(p, N_SLICE, pos, out));
    (*out)->b = start;
    (*out)->c = stop;
    (*out)->d = step;
    return LNX_OK;
}

static lnx_status parse_subscript(parser *p, tpl_node **node)
{
    size_t pos = cur(p)->pos;
    tpl_node *nd = NULL;
    if (tok_is_op(cur(p), OP_DOT)) {
        adv(p);
        const tpl_token *t = cur(p);
        if (t->kind == TK_NAME) {
            LNX_TRY(new_node(p, N_GETATTR, pos, &nd));
            nd->str.p = t->s;
            nd->str.n = t->n;
        } else if (t->kind == TK_INT) {
            tpl_node *idx = NULL;
            LNX_TRY(new_node(p, N_CONST, t->pos, &idx));
            idx->val.kind = TV_INT;
            idx->val.u.i = t->i;
            LNX_TRY(new_node(p, N_GETITEM, pos, &nd));
            nd->b = idx;
        } else {
            return fail_unexpected(p, "an attribute name");
        }
        adv(p);
        nd->a = *node;
        *node = nd;
        return LNX_OK;
    }
    adv(p);
    tpl_node *arg = NULL;
    LNX_TRY(parse_subscribed(p, &arg));
    if (tok_is_op(cur(p), OP_COMMA))
        return tpl_error_at(p->src, cur(p)->pos, LNX_E_TEMPLATE, "tuple subscripts are not supported");
    LNX_TRY(expect_op(p, OP_RBRACKET));
    if (arg->kind == N_SLICE) {
        nd = arg;
    } else {
        LNX_TRY(new_node(p, N_GETITEM, pos, &nd));
        nd->b = arg;
    }
    nd->a = *node;
    *node = nd;
    return LNX_OK;
}

static lnx_status parse_postfix(parser *p, tpl_node **node)
{
    size_t count = 0;
    for (;;) {
        const tpl_token *t = cur(p);
        if (tok_is_op(t, OP_DOT) || tok_is_op(t, OP_LBRACKET)) {
            LNX_TRY(chain(p, &count));
            LNX_TRY(parse_subscript(p, node));
        } else if (tok_is_op(t, OP_LPAREN)) {
            LNX_TRY(chain(p, &count));
            LNX_TRY(parse_call(p, node));
        } else {
            return LNX_OK;
        }
    }
}

static lnx_status parse_unary(parser *p, int with_filter, tpl_node **out)
{
    const tpl_token *t = cur(p);
    tpl_node *node = NULL;
    if (tok_is_op(t, OP_SUB) || tok_is_op(t, OP_ADD)) {
        size_t pos = t->pos;
        int kind = t->op == OP_SUB ? N_NEG : N_POS;
        tpl_node *x = NULL;
        adv(p);
        LNX_TRY(enter(p));
        LNX_TRY(parse_unary(p, 0, &x));
        p->depth--;
        LNX_TRY(binary(p, kind, OP_NONE, pos, x, NULL, &node));
    } else {
        LNX_TRY(parse_primary(p, &node));
    }
    LNX_TRY(parse_postfix(p, &node));
    if (with_filter)
        LNX_TRY(parse_filter_expr(p, &node));
    *out = node;
    return LNX_OK;
}

static lnx_status parse_list(parser *p, tpl_node **out)
{
    size_t pos = cur(p)->pos;
    nvec items = {0};
    adv(p);
    while (!tok_is_op(cur(p), OP_RBRACKET)) {
        if (items.n)
            LNX_TRY(expect_op(p, OP_COMMA));
        if (tok_is_op(cur(p), OP_RBRACKET))
            break;
        tpl_node *x = NULL;
        LNX_TRY(parse_expression(p, 1, &x));
        LNX_TRY(push(p, &items, x));
    }
    adv(p);
    LNX_TRY(new_node(p, N_LIST, pos, out));
    (*out)->kids = items.v;
    (*out)->nkids = items.n;
    return LNX_OK;
}

static lnx_status parse_dict(parser *p, tpl_node **out)
{
    size_t pos = cur(p)->pos;
    nvec keys = {0}, vals = {0};
    adv(p);
    while (!tok_is_op(cur(p), OP_RBRACE)) {
        if (keys.n)
            LNX_TRY(expect_op(p, OP_COMMA));
        if (tok_is_op(cur(p), OP_RBRACE))
            break;
        tpl_node *k = NULL, *v = NULL;
        LNX_TRY(parse_expression(p, 1, &k));
        LNX_TRY(expect_op(p, OP_COLON));
        LNX_TRY(parse_expression(p, 1, &v));
        LNX_TRY(push(p, &keys, k));
        LNX_TRY(push(p, &vals, v));
    }
    adv(p);
    LNX_TRY(new_node(p, N_DICT, pos, out));
    (*out)->kids = keys.v;
    (*out)->nkids = keys.n;
    (*out)->kids2 = vals.v;
    (*out)->nkids2 = vals.n;
    return LNX_OK;
}

static lnx_status parse_string_literal(parser *p, tpl_node **out)
{
    size_t pos = cur(p)->pos;
    tpl_str s = {cur(p)->s, cur(p)->n};
    adv(p);
    if (cur(p)->kind == TK_STRING) {
        /* adjacent literals concatenate */
        tpl_buf b = {.ar = p->ar, .limit = LNX_TEMPLATE_MAX_SOURCE * 4};
        LNX_TRY(tpl_buf_put(&b, s.p, s.n));
        while (cur(p)->kind == TK_STRING) {
            LNX_TRY(tpl_buf_put(&b, cur(p)->s, cur(p)->n));
            adv(p);
        }
        s.p = b.p ? b.p : "";
        s.n = b.n;
    }
    LNX_TRY(new_node(p, N_CONST, pos, out));
    (*out)->val.kind = TV_STR;
    (*out)->val.u.s = s;
    return LNX_OK;
}

static lnx_status parse_primary(parser *p, tpl_node **out)
{
    const tpl_token *t = cur(p);
    tpl_node *nd = NULL;
    switch (t->kind) {
    case TK_NAME:
        LNX_TRY(new_node(p, N_CONST, t->pos, &nd));
        if (tok_is_name(t, "true") || tok_is_name(t, "True") || tok_is_name(t, "false") || tok_is_name(t, "False")) {
            nd->val.kind = TV_BOOL;
            nd->val.u.b = t->s[0] == 't' || t->s[0] == 'T';
        } else if (tok_is_name(t, "none") || tok_is_name(t, "None")) {
            nd->val.kind = TV_NONE;
        } else {
            nd->kind = N_NAME;
            nd->str.p = t->s;
            nd->str.n = t->n;
        }
        adv(p);
        *out = nd;
        return LNX_OK;
    case TK_STRING:
        return parse_string_literal(p, out);
    case TK_INT:
    case TK_FLOAT:
        LNX_TRY(new_node(p, N_CONST, t->pos, &nd));
        if (t->kind == TK_INT) {
            nd->val.kind = TV_INT;
            nd->val.u.i = t->i;
        } else {
            nd->val.kind = TV_FLOAT;
            nd->val.u.f = t->f;
        }
        adv(p);
        *out = nd;
        return LNX_OK;
    case TK_OP:
        if (t->op == OP_LPAREN) {
            adv(p);
            LNX_TRY(parse_tuple(p, 1, 1, NULL, out));
            return expect_op(p, OP_RPAREN);
        }
        if (t->op == OP_LBRACKET)
            return parse_list(p, out);
        if (t->op == OP_LBRACE)
            return parse_dict(p, out);
        break;
    default:
        break;
    }
    return fail_unexpected(p, NULL);
}

static lnx_status parse_expression(parser *p, int with_condexpr, tpl_node **out)
{
    LNX_TRY(enter(p));
    lnx_status st = with_condexpr ? parse_condexpr(p, out) : parse_or(p, out);
    p->depth--;
    return st;
}

static int tuple_end(const parser *p, const char *extra_end)
{
    const tpl_token *t = cur(p);
    return t->kind == TK_VAR_END || t->kind == TK_BLOCK_END || tok_is_op(t, OP_RPAREN) ||
           (extra_end && tok_is_name(t, extra_end));
}

static lnx_status parse_tuple(parser *p, int with_condexpr, int explicit_parens, const char *extra_end,
                              tpl_node **out)
{
    size_t pos = cur(p)->pos;
    nvec items = {0};
    int is_tuple = 0;
    for (;;) {
        if (items.n)
            LNX_TRY(expect_op(p, OP_COMMA));
        if (tuple_end(p, extra_end))
            break;
        if (items.n >= TPL_MAX_CHAIN)
            return tpl_error_at(p->src, cur(p)->pos, LNX_E_LIMIT, "tuple too long");
        tpl_node *x = NULL;
        LNX_TRY(parse_expression(p, with_condexpr, &x));
        LNX_TRY(push(p, &items, x));
        if (!tok_is_op(cur(p), OP_COMMA))
            break;
        is_tuple = 1;
    }
    if (!is_tuple) {
        if (items.n) {
            *out = items.v[0];
            return LNX_OK;
        }
        if (!explicit_parens)
            return fail_unexpected(p, "an expression");
    }
    LNX_TRY(new_node(p, N_TUPLE, pos, out));
    (*out)->kids = items.v;
    (*out)->nkids = items.n;
    return LNX_OK;
}

/* ---- statements ----------------------------------------------------------------------------- */

static lnx_status parse_body(parser *p, const char *const *ends, size_t nends, const tpl_token *opener,
                             tpl_node **out, size_t *which);

/* Consumes "{% name %}" (cur is at its "{%"). */
static lnx_status consume_tag(parser *p)
{
    adv(p);
    adv(p);
    return expect_kind(p, TK_BLOCK_END, "end of statement block '%}'");
}

static int reserved_target(const tpl_token *t)
{
    return tok_is_name(t, "true") || tok_is_name(t, "false") || tok_is_name(t, "none") || tok_is_name(t, "True") ||
           tok_is_name(t, "False") || tok_is_name(t, "None");
}

/* Assignment target of for / set: a name or a tuple of names, optionally parenthesised. */
static lnx_status parse_target(parser *p, int is_for, tpl_node **out)
{
    size_t pos = cur(p)->pos;
    int paren = tok_is_op(cur(p), OP_LPAREN);
    if (paren)
        adv(p);
    nvec names = {0};
    int is_tuple = paren;
    for (;;) {
        const tpl_token *t = cur(p);
        if (t->kind != TK_NAME || reserved_target(t))
            return fail_unexpected(p, "a variable name");
        if (is_for && tok_is_name(t, "loop"))
            return tpl_error_at(p->src, t->pos, LNX_E_TEMPLATE, "cannot assign to the special 'loop' variable");
        if (names.n >= TPL_MAX_CHAIN)
            return tpl_error_at(p->src, t->pos, LNX_E_LIMIT, "too many assignment targets");
        tpl_node *nd = NULL;
        LNX_TRY(new_node(p, N_NAME, t->pos, &nd));
        nd->str.p = t->s;
        nd->str.n = t->n;
        LNX_TRY(push(p, &names, nd));
        adv(p);
        if (!tok_is_op(cur(p), OP_COMMA))
            break;
        adv(p);
        is_tuple = 1;
        if (paren && tok_is_op(cur(p), OP_RPAREN))
            break;
        if (!paren && cur(p)->kind != TK_NAME)
            break;
    }
    if (paren)
        LNX_TRY(expect_op(p, OP_RPAREN));
    if (!is_tuple) {
        *out = names.v[0];
        return LNX_OK;
    }
    LNX_TRY(new_node(p, N_TUPLE, pos, out));
    (*out)->kids = names.v;
    (*out)->nkids = names.n;
    return LNX_OK;
}

static lnx_status parse_for(parser *p, const tpl_token *opener, tpl_node **out)
{
    tpl_node *nd = NULL;
    LNX_TRY(new_node(p, N_FOR, opener->pos, &nd));
    adv(p);
    LNX_TRY(parse_target(p, 1, &nd->c));
    if (!tok_is_name(cur(p), "in"))
        return fail_unexpected(p, "'in'");
    adv(p);
    LNX_TRY(parse_tuple(p, 0, 0, "recursive", &nd->a));
    if (tok_is_name(cur(p), "if")) {
        adv(p);
        LNX_TRY(parse_expression(p, 1, &nd->b));
    }
    if (tok_is_name(cur(p), "recursive"))
        return tpl_error_at(p->src, cur(p)->pos, LNX_E_TEMPLATE, "recursive loops are not supported");
    LNX_TRY(expect_kind(p, TK_BLOCK_END, "end of statement block '%}'"));
    static const char *const ends[] = {"endfor", "else"};
    tpl_node *body = NULL;
    size_t which = 0;
    p->loops++;
    LNX_TRY(parse_body(p, ends, 2, opener, &body, &which));
    p->loops--;
    nd->kids = body->kids;
    nd->nkids = body->nkids;
    LNX_TRY(consume_tag(p));
    if (which == 1) {
        LNX_TRY(parse_body(p, ends, 1, opener, &body, &which));
        nd->kids2 = body->kids;
        nd->nkids2 = body->nkids;
        LNX_TRY(consume_tag(p));
    }
    *out = nd;
    return LNX_OK;
}

static lnx_status parse_if(parser *p, const tpl_token *opener, tpl_node **out)
{
    static const char *const ends[] = {"endif", "elif", "else"};
    tpl_node *nd = NULL, *top = NULL;
    LNX_TRY(new_node(p, N_IF, opener->pos, &top));
    nd = top;
    adv(p);
    for (;;) {
        tpl_node *body = NULL;
        size_t which = 0;
        LNX_TRY(parse_tuple(p, 0, 0, NULL, &nd->a));
        LNX_TRY(expect_kind(p, TK_BLOCK_END, "end of statement block '%}'"));
        LNX_TRY(parse_body(p, ends, 3, opener, &body, &which));
        nd->kids = body->kids;
        nd->nkids = body->nkids;
        if (which == 1) {
            tpl_node *elif = NULL;
            LNX_TRY(new_node(p, N_IF, cur(p)->pos, &elif));
            elif->op = 1;
            tpl_node **kids = tpl_alloc(p->ar, sizeof *kids);
            if (!kids)
                return tpl_arena_status();
            kids[0] = elif;
            nd->kids2 = kids;
            nd->nkids2 = 1;
            nd = elif;
            adv(p);
            adv(p);
            continue;
        }
        LNX_TRY(consume_tag(p));
        if (which == 2) {
            LNX_TRY(parse_body(p, ends, 1, opener, &body, &which));
            nd->kids2 = body->kids;
            nd->nkids2 = body->nkids;
            LNX_TRY(consume_tag(p));
        }
        *out = top;
        return LNX_OK;
    }
}

static lnx_status parse_set(parser *p, const tpl_token *opener, tpl_node **out)
{
    tpl_node *nd = NULL;
    LNX_TRY(new_node(p, N_SET, opener->pos, &nd));
    adv(p);
    if (cur(p)->kind == TK_NAME && tok_is_op(peek(p), OP_DOT)) {
        tpl_node *ns = NULL, *attr = NULL;
        LNX_TRY(new_node(p, N_NAME, cur(p)->pos, &ns));
        ns->str.p = cur(p)->s;
        ns->str.n = cur(p)->n;
        adv(p);
        LNX_TRY(new_node(p, N_GETATTR, cur(p)->pos, &attr));
        adv(p);
        if (cur(p)->kind != TK_NAME)
            return fail_unexpected(p, "an attribute name");
        attr->str.p = cur(p)->s;
        attr->str.n = cur(p)->n;
        attr->a = ns;
        adv(p);
        nd->c = attr;
    } else {
        LNX_TRY(parse_target(p, 0, &nd->c));
    }
    if (tok_is_op(cur(p), OP_ASSIGN)) {
        adv(p);
        LNX_TRY(parse_tuple(p, 1, 0, NULL, &nd->a));
        LNX_TRY(expect_kind(p, TK_BLOCK_END, "end of statement block '%}'"));
        *out = nd;
        return LNX_OK;
    }
    if (nd->c->kind == N_TUPLE)
        return fail_unexpected(p, "'='");
    if (tok_is_op(cur(p), OP_PIPE))
        return tpl_error_at(p->src, cur(p)->pos, LNX_E_TEMPLATE, "filtered set blocks are not supported");
    LNX_TRY(expect_kind(p, TK_BLOCK_END, "'=' or end of statement block '%}'"));
    static const char *const ends[] = {"endset"};
    tpl_node *body = NULL;
    size_t which = 0;
    LNX_TRY(parse_body(p, ends, 1, opener, &body, &which));
    nd->kids = body->kids;
    nd->nkids = body->nkids;
    LNX_TRY(consume_tag(p));
    *out = nd;
    return LNX_OK;
}

static lnx_status parse_statement(parser *p, const char *const *ends, size_t nends, tpl_node **out)
{
    const tpl_token *opener = cur(p);
    adv(p);
    const tpl_token *t = cur(p);
    if (t->kind != TK_NAME)
        return fail_unexpected(p, "a statement name");
    if (tok_is_name(t, "for"))
        return parse_for(p, opener, out);
    if (tok_is_name(t, "if"))
        return parse_if(p, opener, out);
    if (tok_is_name(t, "set"))
        return parse_set(p, opener, out);
    if (tok_is_name(t, "break") || tok_is_name(t, "continue")) {
        if (p->loops == 0)
            return tpl_error_at(p->src, t->pos, LNX_E_TEMPLATE, "'%.*s' outside of a loop", (int)t->n, t->s);
        LNX_TRY(new_node(p, tok_is_name(t, "break") ? N_BREAK : N_CONTINUE, t->pos, out));
        adv(p);
        return expect_kind(p, TK_BLOCK_END, "end of statement block '%}'");
    }
    if (tok_is_name(t, "generation")) {
        static const char *const gen_ends[] = {"endgeneration"};
        size_t which = 0;
        adv(p);
        LNX_TRY(expect_kind(p, TK_BLOCK_END, "end of statement block '%}'"));
        int loops = p->loops;
        LNX_TRY(parse_body(p, gen_ends, 1, opener, out, &which));
        p->loops = loops;
        return consume_tag(p);
    }
    static const char *const unsupported[] = {"macro", "call", "filter", "include", "import", "from", "extends",
                                              "block", "with", "autoescape", "do", "trans", "pluralize"};
    for (size_t k = 0; k < sizeof unsupported / sizeof unsupported[0]; k++)
        if (tok_is_name(t, unsupported[k]))
            return tpl_error_at(p->src, t->pos, LNX_E_TEMPLATE, "'%s' tags are not supported", unsupported[k]);
    int w = (int)(t->n > 60 ? 60 : t->n);
    if (nends)
        return tpl_error_at(p->src, t->pos, LNX_E_TEMPLATE, "unexpected tag '%.*s' (expected '%s')", w, t->s, ends[0]);
    return tpl_error_at(p->src, t->pos, LNX_E_TEMPLATE, "unknown tag '%.*s'", w, t->s);
}

/* Statements up to one of the tags in `ends` (left unconsumed, its index in *which) or, when
 * nends is 0, to the end of the template. */
static lnx_status parse_body(parser *p, const char *const *ends, size_t nends, const tpl_token *opener,
                             tpl_node **out, size_t *which)
{
    nvec body = {0};
    LNX_TRY(enter(p));
    for (;;) {
        const tpl_token *t = cur(p);
        tpl_node *nd = NULL;
        if (t->kind == TK_EOF) {
            if (nends) {
                int line, col;
                tpl_line_col(p->src, opener->pos, &line, &col);
                return tpl_error_at(p->src, t->pos, LNX_E_TEMPLATE,
                                    "unexpected end of template: expected '%s' to close the block opened at %d:%d",
                                    ends[0], line, col);
            }
            *which = 0;
            break;
        }
        if (t->kind == TK_DATA) {
            LNX_TRY(new_node(p, N_TEXT, t->pos, &nd));
            nd->str.p = t->s;
            nd->str.n = t->n;
            adv(p);
        } else if (t->kind == TK_VAR_BEGIN) {
            LNX_TRY(new_node(p, N_PRINT, t->pos, &nd));
            adv(p);
            LNX_TRY(parse_tuple(p, 1, 0, NULL, &nd->a));
            LNX_TRY(expect_kind(p, TK_VAR_END, "end of print statement '}}'"));
        } else if (t->kind == TK_BLOCK_BEGIN) {
            size_t k = 0;
            while (k < nends && !tok_is_name(peek(p), ends[k]))
                k++;
            if (k < nends) {
                *which = k;
                break;
            }
            LNX_TRY(parse_statement(p, ends, nends, &nd));
        } else {
            return fail_unexpected(p, NULL);
        }
        LNX_TRY(push(p, &body, nd));
    }
    p->depth--;
    LNX_TRY(new_node(p, N_BODY, opener ? opener->pos : 0, out));
    (*out)->kids = body.v;
    (*out)->nkids = body.n;
    return LNX_OK;
}

/* ---- entry points --------------------------------------------------------------------------- */

void lnx_template_free(lnx_template *t)
{
    if (!t)
        return;
    tpl_arena_free(&t->ar);
    free(t);
}

lnx_status lnx_template_parse(lnx_template **out, const char *source, size_t len)
{
    if (!out)
        return lnx_error(LNX_E_INVALID, "lnx_template_parse: out is NULL");
    *out = NULL;
    if (!source && len)
        return lnx_error(LNX_E_INVALID, "lnx_template_parse: source is NULL");
    if (len > LNX_TEMPLATE_MAX_SOURCE)
        return lnx_error(LNX_E_LIMIT, "template: source of %zu bytes exceeds %zu", len, LNX_TEMPLATE_MAX_SOURCE);
    lnx_template *t = calloc(1, sizeof *t);
    if (!t)
        return lnx_error(LNX_E_NOMEM, "template: out of memory");
    tpl_arena_init(&t->ar, TPL_PARSE_MEMORY);
    char *src = tpl_alloc(&t->ar, len + 1);
    if (!src) {
        lnx_status st = tpl_arena_status();
        lnx_template_free(t);
        return st;
    }
    /* newlines read as "\n" and one trailing newline is dropped, as Jinja's lexer does */
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (source[i] == '\r') {
            src[n++] = '\n';
            if (i + 1 < len && source[i + 1] == '\n')
                i++;
        } else {
            src[n++] = source[i];
        }
    }
    if (n && src[n - 1] == '\n')
        n--;
    src[n] = '\0';
    t->src = src;
    t->len = n;

    tpl_token *toks;
    size_t ntok;
    lnx_status st = tpl_lex(&t->ar, src, n, &toks, &ntok);
    if (st == LNX_OK) {
        parser p = {.ar = &t->ar, .src = src, .t = toks, .n = ntok};
        size_t which = 0;
        st = parse_body(&p, NULL, 0, NULL, &t->root, &which);
        free(toks);
    }
    if (st != LNX_OK) {
        lnx_template_free(t);
        return st;
    }
    *out = t;
    return LNX_OK;
}
