//! Splits a Snowflake SQL script (the files of `infra/snowflake`) into statements for the
//! SQL API, which runs one statement per request when bindings are used and counts them
//! otherwise. A `;` ends a statement only outside quotes (`'...'` with `''`, `"..."`),
//! comments (`--`, `/* */`) and `$$ ... $$` bodies (procedures).

/// The statements of a script, trimmed, without empty or comment-only ones.
pub fn statements(script: &str) -> Vec<String> {
    let bytes = script.as_bytes();
    let mut found = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        at = match (bytes[at], bytes.get(at + 1)) {
            (b'-', Some(b'-')) => skip_to(script, at, "\n"),
            (b'/', Some(b'*')) => skip_to(script, at + 2, "*/"),
            (b'$', Some(b'$')) => skip_to(script, at + 2, "$$"),
            (b'\'', _) => skip_quoted(bytes, at, b'\''),
            (b'"', _) => skip_quoted(bytes, at, b'"'),
            (b';', _) => {
                push(&mut found, &script[start..at]);
                start = at + 1;
                at + 1
            }
            _ => at + 1,
        };
    }
    push(&mut found, &script[start..]);
    found
}

/// The position after `end` (or the script's end) searching from `from`.
fn skip_to(script: &str, from: usize, end: &str) -> usize {
    script[from..]
        .find(end)
        .map_or(script.len(), |found| from + found + end.len())
}

/// The position after a quoted run opened at `open`; a doubled quote is an escaped one.
fn skip_quoted(bytes: &[u8], open: usize, quote: u8) -> usize {
    let mut at = open + 1;
    while at < bytes.len() {
        if bytes[at] == quote {
            if bytes.get(at + 1) == Some(&quote) {
                at += 2;
                continue;
            }
            return at + 1;
        }
        at += 1;
    }
    bytes.len()
}

fn push(found: &mut Vec<String>, statement: &str) {
    let code: String = statement
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    if !code.trim().is_empty() {
        found.push(statement.trim().to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::statements;

    #[test]
    fn semicolons_inside_quotes_comments_and_bodies_do_not_split() {
        let script = "-- a; comment\nCREATE TABLE T (A VARCHAR DEFAULT 'x;''y');\n\
                      /* block; */ SELECT \"a;b\" FROM T;\n\
                      CREATE PROCEDURE P() RETURNS INT LANGUAGE SQL AS\n$$\nBEGIN\n  RETURN 1;\nEND;\n$$;\n\
                      -- trailing comment only\n";
        let found = statements(script);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].ends_with("'x;''y')"));
        assert!(found[1].contains("\"a;b\""));
        assert!(found[2].contains("RETURN 1;\nEND;\n$$"));
    }
}
