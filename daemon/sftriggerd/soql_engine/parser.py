"""A recursive-descent parser for the SOQL subset the emulator serves.

    query      := SELECT fields FROM name [WHERE condition] [ORDER BY order (, order)*]
                  [LIMIT int] [OFFSET int]
    fields     := COUNT ( ) | name (, name)*
    condition  := unary (AND unary)* | unary (OR unary)*
    unary      := NOT unary | ( condition ) | name op literal | name [NOT] IN ( literal, ... )
                  | name LIKE string
    order      := name [ASC | DESC] [NULLS FIRST | NULLS LAST]

Anything else is refused with Salesforce's "unexpected token" message: a subset that quietly
accepted a wider query could answer it wrongly instead.
"""

from __future__ import annotations

from typing import cast

from sftriggerd.soql_engine.errors import SoqlError, malformed, unexpected_token
from sftriggerd.soql_engine.lexer import Token, TokenKind, tokenize
from sftriggerd.soql_engine.literals import (
    decode_string,
    like_pattern,
    parse_date,
    parse_datetime,
)
from sftriggerd.soql_engine.nodes import (
    And,
    Comparison,
    ComparisonOperator,
    Condition,
    FieldRef,
    InList,
    Like,
    Literal,
    LiteralValue,
    Not,
    Or,
    OrderItem,
    Query,
)

# Words Salesforce reserves in SOQL; they cannot name a field or an object.
_RESERVED = frozenset(
    "AND ASC DESC EXCLUDES FIRST FROM GROUP HAVING IN INCLUDES LAST LIKE LIMIT NOT NULL NULLS"
    " OR SELECT WHERE WITH".split()
)
_OPERATOR_ALIASES: dict[str, ComparisonOperator] = {"<>": "!="}


def parse_query(text: str) -> Query:
    """`text` as a `Query`; raises SoqlError("MALFORMED_QUERY", ...) outside the subset."""
    return _Parser(text).parse()


def parse_where(text: str) -> Condition:
    """`text`, a WHERE clause's condition alone, as a `Condition`; raises SoqlError
    ("MALFORMED_QUERY", ...) outside the subset or when anything follows the condition."""
    parser = _Parser(text)
    condition = parser._condition()
    parser._expect("eof")
    return condition


class _Parser:
    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = tokenize(text)
        self._index = 0

    # -- token stream ---------------------------------------------------------------------

    def _peek(self, ahead: int = 0) -> Token:
        return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]

    def _advance(self) -> Token:
        token = self._peek()
        self._index += 1
        return token

    def _unexpected(self, token: Token | None = None) -> SoqlError:
        token = token or self._peek()
        if token.kind == "eof":
            return unexpected_token(self._text, token.position, None)
        shown = token.text[1:-1] if token.kind == "string" else token.text
        return unexpected_token(self._text, token.position, shown)

    def _expect_keyword(self, *words: str) -> Token:
        if not self._peek().is_keyword(*words):
            raise self._unexpected()
        return self._advance()

    def _expect(self, kind: TokenKind) -> Token:
        if self._peek().kind != kind:
            raise self._unexpected()
        return self._advance()

    def _accept_keyword(self, *words: str) -> bool:
        if self._peek().is_keyword(*words):
            self._index += 1
            return True
        return False

    def _name(self) -> Token:
        token = self._peek()
        if token.kind != "ident" or token.text.upper() in _RESERVED:
            raise self._unexpected()
        return self._advance()

    # -- clauses --------------------------------------------------------------------------

    def parse(self) -> Query:
        self._expect_keyword("SELECT")
        select, positions, count_only = self._select_list()
        self._expect_keyword("FROM")
        object_token = self._name()
        where = self._condition() if self._accept_keyword("WHERE") else None
        order_by: tuple[OrderItem, ...] = ()
        if self._accept_keyword("ORDER"):
            self._expect_keyword("BY")
            order_by = self._order_list()
        limit = self._count_clause("LIMIT")
        offset = self._count_clause("OFFSET")
        self._expect("eof")
        return Query(
            select=select,
            count_only=count_only,
            object_name=object_token.text,
            where=where,
            order_by=order_by,
            limit=limit,
            offset=offset,
            text=self._text,
            select_positions=positions,
            object_position=object_token.position,
        )

    def _select_list(self) -> tuple[tuple[str, ...], tuple[int, ...], bool]:
        if self._peek().is_keyword("COUNT") and self._peek(1).kind == "(":
            self._index += 1
            self._expect("(")
            self._expect(")")
            return (), (), True
        names: list[Token] = [self._name()]
        while self._peek().kind == ",":
            self._advance()
            names.append(self._name())
        seen: set[str] = set()
        for token in names:
            if token.text.casefold() in seen:
                raise malformed(
                    self._text, token.position, f"duplicate field selected: {token.text}"
                )
            seen.add(token.text.casefold())
        return tuple(t.text for t in names), tuple(t.position for t in names), False

    def _order_list(self) -> tuple[OrderItem, ...]:
        items = [self._order_item()]
        while self._peek().kind == ",":
            self._advance()
            items.append(self._order_item())
        return tuple(items)

    def _order_item(self) -> OrderItem:
        name = self._name()
        descending = False
        if self._peek().is_keyword("ASC", "DESC"):
            descending = self._advance().text.upper() == "DESC"
        nulls_last = descending
        if self._accept_keyword("NULLS"):
            nulls_last = self._expect_keyword("FIRST", "LAST").text.upper() == "LAST"
        return OrderItem(name.text, descending, nulls_last, name.position)

    def _count_clause(self, keyword: str) -> int | None:
        if not self._accept_keyword(keyword):
            return None
        token = self._peek()
        if token.kind != "number" or not token.text.isdigit():
            raise self._unexpected()
        self._advance()
        return int(token.text)

    # -- conditions -----------------------------------------------------------------------

    def _condition(self) -> Condition:
        first = self._unary()
        if not self._peek().is_keyword("AND", "OR"):
            return first
        connective = self._peek().text.upper()
        operands = [first]
        while self._peek().is_keyword("AND", "OR"):
            # Salesforce refuses `a AND b OR c` rather than pick a precedence for it.
            if self._peek().text.upper() != connective:
                raise self._unexpected()
            self._advance()
            operands.append(self._unary())
        return And(tuple(operands)) if connective == "AND" else Or(tuple(operands))

    def _unary(self) -> Condition:
        if self._accept_keyword("NOT"):
            return Not(self._unary())
        if self._peek().kind == "(":
            self._advance()
            inner = self._condition()
            self._expect(")")
            return inner
        return self._predicate()

    def _predicate(self) -> Condition:
        name = self._name()
        field = FieldRef(name.text, name.position)
        token = self._peek()
        if token.kind == "op":
            self._advance()
            operator = _OPERATOR_ALIASES.get(token.text, cast(ComparisonOperator, token.text))
            value = self._literal()
            if value.value is None and operator not in ("=", "!="):
                raise self._unexpected(self._tokens[self._index - 1])
            return Comparison(field, operator, value)
        if self._accept_keyword("IN"):
            return InList(field, self._literal_list(), negated=False)
        if self._accept_keyword("NOT"):
            self._expect_keyword("IN")
            return InList(field, self._literal_list(), negated=True)
        if self._accept_keyword("LIKE"):
            pattern = self._expect("string")
            raw = pattern.text[1:-1]
            return Like(field, like_pattern(raw), Literal(decode_string(raw), pattern.position))
        raise self._unexpected()

    def _literal_list(self) -> tuple[Literal, ...]:
        self._expect("(")
        values = [self._literal()]
        while self._peek().kind == ",":
            self._advance()
            values.append(self._literal())
        self._expect(")")
        return tuple(values)

    def _literal(self) -> Literal:
        literal = _to_literal(self._peek())
        if literal is None:
            raise self._unexpected()
        self._advance()
        return literal


_WORD_LITERALS: dict[str, bool | None] = {"TRUE": True, "FALSE": False, "NULL": None}


def _to_literal(token: Token) -> Literal | None:
    """The literal `token` stands for, or None when it is no literal."""
    value: LiteralValue
    if token.kind == "string":
        value = decode_string(token.text[1:-1])
    elif token.kind == "number":
        value = float(token.text) if "." in token.text else int(token.text)
    elif token.kind == "datetime":
        value = parse_datetime(token.text)
    elif token.kind == "date":
        value = parse_date(token.text)
    elif token.kind == "ident" and token.text.upper() in _WORD_LITERALS:
        value = _WORD_LITERALS[token.text.upper()]
    else:
        return None
    return Literal(value, token.position)
