//! The payload rules table (`tandem_ike::rules`), checked against an
//! expectation matrix written out here from RFC 7296 sections 1.2-1.4,
//! 2.16, 2.19 and 2.21 and RFC 5998: every payload type x every exchange x
//! request/response, both as the table answers it and as `check` decides
//! messages one payload away from a valid one; then typical messages of
//! each exchange, and the `rejects_*` cases by name.

use tandem_ike::Error;
use tandem_ike::rules::{self, Occurs, Placement};
use tandem_ike::wire::PayloadType as P;
use tandem_ike::wire::*;

// ------------------------------------------------------- the expectations

/// The matrix's columns: every payload type the crate knows.
const COLUMNS: &str = "SA KE IDi IDr CERT CERTREQ AUTH NONCE NOTIFY DELETE VENDOR_ID TSi TSr SK CP EAP SKF";

/// The main form of every message: `-` never, `?` at most once, `1` exactly
/// once, `*` any number, `+` at least once. `clear` messages carry their
/// payloads outside any SK payload, `sk` ones inside their only SK or SKF.
const MAIN: &str = "
#                                 SA KE IDi IDr CERT CERTREQ AUTH NONCE NOTIFY DELETE VENDOR_ID TSi TSr SK CP EAP SKF
IKE_SA_INIT     request  clear    1  1  -   -   -    *       -    1     *      -      *         -   -   -  -  -   -
IKE_SA_INIT     response clear    1  1  -   -   -    *       -    1     *      -      *         -   -   -  -  -   -
IKE_AUTH        request  sk       ?  -  1   ?   *    *       ?    -     *      -      *         ?   ?   -  ?  ?   -
IKE_AUTH        response sk       ?  -  -   1   *    -       1    -     *      -      *         ?   ?   -  ?  ?   -
CREATE_CHILD_SA request  sk       1  ?  -   -   -    -       -    1     *      -      *         ?   ?   -  ?  -   -
CREATE_CHILD_SA response sk       1  ?  -   -   -    -       -    1     *      -      *         ?   ?   -  ?  -   -
INFORMATIONAL   request  sk       -  -  -   -   -    -       -    -     *      *      *         -   -   -  *  -   -
INFORMATIONAL   response sk       -  -  -   -   -    -       -    -     *      *      *         -   -   -  *  -   -
";

/// The other forms a message may take: refusals that are only Notifys, and
/// the IKE_AUTH messages of EAP (RFC 7296 section 2.16, RFC 5998).
const ALTERNATIVES: &str = "
#                                 SA KE IDi IDr CERT CERTREQ AUTH NONCE NOTIFY DELETE VENDOR_ID TSi TSr SK CP EAP SKF
IKE_SA_INIT     response refusal  -  -  -   -   -    -       -    -     +      -      *         -   -   -  -  -   -
IKE_AUTH        request  eap      -  -  -   -   -    -       -    -     *      -      *         -   -   -  -  1   -
IKE_AUTH        request  eap-end  -  -  -   -   -    -       1    -     *      -      *         -   -   -  -  -   -
IKE_AUTH        response eap-only -  -  -   1   -    -       -    -     *      -      *         -   -   -  -  1   -
IKE_AUTH        response eap      -  -  -   -   -    -       -    -     *      -      *         -   -   -  -  1   -
IKE_AUTH        response eap-end  ?  -  -   -   -    -       1    -     *      -      *         ?   ?   -  ?  -   -
IKE_AUTH        response refusal  -  -  -   -   -    -       -    -     +      -      *         -   -   -  -  -   -
CREATE_CHILD_SA response refusal  -  -  -   -   -    -       -    -     +      -      *         -   -   -  -  -   -
";

/// Payload types that come all together or not at all, per exchange.
fn groups(x: ExchangeType) -> &'static [&'static [PayloadType]] {
    match x {
        ExchangeType::IKE_AUTH => &[&[PayloadType::SA, PayloadType::TSi, PayloadType::TSr]],
        ExchangeType::CREATE_CHILD_SA => &[&[PayloadType::TSi, PayloadType::TSr]],
        _ => &[],
    }
}

/// One line of a matrix.
#[derive(Clone, Debug)]
struct Row {
    exchange: ExchangeType,
    response: bool,
    /// `clear`, `sk`, or the name of an alternative.
    label: &'static str,
    cells: Vec<(PayloadType, char)>,
}

impl Row {
    /// "IKE_AUTH request": how the crate's messages name it.
    fn name(&self) -> String {
        format!("{} {}", self.exchange, if self.response { "response" } else { "request" })
    }

    fn cell(&self, ty: PayloadType) -> char {
        self.cells.iter().find(|(t, _)| *t == ty).map_or('?', |&(_, c)| c)
    }

    /// One payload of each mandatory type.
    fn base(&self) -> Vec<PayloadType> {
        self.cells.iter().filter(|(_, c)| matches!(c, '1' | '+')).map(|&(t, _)| t).collect()
    }

    /// Whether a body with these payload types fits this line.
    fn admits(&self, body: &[PayloadType]) -> bool {
        let fits = self.cells.iter().all(|&(ty, c)| admits(c, count(body, ty)));
        let grouped = groups(self.exchange).iter().all(|g| group_ok(g, body));
        fits && grouped
    }
}

/// The payload type named `name` in the registry.
fn payload_type(name: &str) -> PayloadType {
    (0..=u8::MAX).map(PayloadType).find(|t| t.name() == Some(name)).expect("a payload type name")
}

/// The exchange type named `name` in the registry.
fn exchange_type(name: &str) -> ExchangeType {
    (0..=u8::MAX).map(ExchangeType).find(|t| t.name() == Some(name)).expect("an exchange type name")
}

/// Reads a matrix; lines starting with `#` are comments.
fn matrix(text: &'static str) -> Vec<Row> {
    let columns: Vec<PayloadType> = COLUMNS.split_whitespace().map(payload_type).collect();
    let lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    lines
        .map(|line| {
            let mut words = line.split_whitespace();
            let exchange = exchange_type(words.next().expect("exchange"));
            let response = match words.next() {
                Some("request") => false,
                Some("response") => true,
                other => panic!("direction {other:?}"),
            };
            let label = words.next().expect("label");
            let cells: Vec<char> = words.map(|w| w.chars().next().expect("cell")).collect();
            assert_eq!(cells.len(), columns.len(), "{line}");
            Row { exchange, response, label, cells: columns.iter().copied().zip(cells).collect() }
        })
        .collect()
}

fn count(body: &[PayloadType], ty: PayloadType) -> usize {
    body.iter().filter(|&&t| t == ty).count()
}

/// Whether a cell admits `n` payloads.
fn admits(cell: char, n: usize) -> bool {
    match cell {
        '-' => n == 0,
        '?' => n <= 1,
        '1' => n == 1,
        '*' => true,
        '+' => n >= 1,
        other => panic!("cell {other:?}"),
    }
}

/// What a cell says in the crate's vocabulary.
fn occurs(cell: char) -> Occurs {
    match cell {
        '-' => Occurs::Never,
        '?' => Occurs::Optional,
        '1' => Occurs::Once,
        '*' => Occurs::Any,
        '+' => Occurs::AtLeastOnce,
        other => panic!("cell {other:?}"),
    }
}

fn group_ok(group: &[PayloadType], body: &[PayloadType]) -> bool {
    let present = group.iter().filter(|&&t| count(body, t) > 0).count();
    present == 0 || present == group.len()
}

/// The group `ty` belongs to in `x`, or just `ty`.
fn group_of(x: ExchangeType, ty: PayloadType) -> Vec<PayloadType> {
    groups(x).iter().find(|g| g.contains(&ty)).map_or_else(|| vec![ty], |g| g.to_vec())
}

/// The oracle: whether a message of `main`'s kind with this body is valid.
fn expected(main: &Row, alternatives: &[Row], body: &[PayloadType]) -> bool {
    let same = |r: &&Row| r.exchange == main.exchange && r.response == main.response;
    main.admits(body) || alternatives.iter().filter(same).any(|r| r.admits(body))
}

/// The known payload types, in registry order.
fn known() -> Vec<PayloadType> {
    COLUMNS.split_whitespace().map(payload_type).collect()
}

/// Puts a body where `row` says: outer and inner payload types.
fn wrap(row: &Row, body: &[PayloadType]) -> (Vec<PayloadType>, Vec<PayloadType>) {
    match row.label {
        "clear" => (body.to_vec(), vec![]),
        _ => (vec![PayloadType::SK], body.to_vec()),
    }
}

fn check_body(row: &Row, body: &[PayloadType]) -> Result<(), Error> {
    let (outer, inner) = wrap(row, body);
    rules::check(row.exchange, row.response, &outer, &inner)
}

/// The error the main line's single broken rule gives, for `ty`.
fn expected_message(main: &Row, body: &[PayloadType], ty: PayloadType) -> String {
    let name = main.name();
    let cell = main.cell(ty);
    let n = count(body, ty);
    if main.label == "clear" && ty.is_encrypted() {
        format!("{name} with an Encrypted payload")
    } else if cell == '-' {
        format!("{name} with unexpected {ty}")
    } else if !admits(cell, n) && n == 0 {
        format!("{name} without {ty}")
    } else if !admits(cell, n) {
        format!("{name} with more than one {ty}")
    } else {
        let group = groups(main.exchange).iter().find(|g| g.contains(&ty)).expect("a broken group");
        let names: Vec<String> = group.iter().map(ToString::to_string).collect();
        format!("{name} with some but not all of {}", names.join(", "))
    }
}

// ------------------------------------------------------------ the walks

#[test]
fn the_matrix_covers_every_exchange_direction_and_payload_type() {
    let main = matrix(MAIN);
    assert_eq!(main.len(), 8);
    let known_types: Vec<PayloadType> = (0..=u8::MAX).map(PayloadType).filter(|t| t.is_known()).collect();
    let mut columns = known();
    columns.sort();
    assert_eq!(columns, known_types);
    for x in (0..=u8::MAX).map(ExchangeType).filter(|x| x.name().is_some()) {
        for response in [false, true] {
            assert!(main.iter().any(|r| r.exchange == x && r.response == response), "{x} {response}");
        }
    }
}

#[test]
fn the_table_answers_as_the_matrix_for_every_payload_exchange_and_direction() {
    let alternatives = matrix(ALTERNATIVES);
    for row in matrix(MAIN) {
        let want = if row.label == "clear" { Placement::Clear } else { Placement::Encrypted };
        assert_eq!(rules::placement(row.exchange), Ok(want), "{}", row.name());
        let shapes = rules::shapes(row.exchange, row.response).expect("a known exchange");
        let (main, others) = shapes.split_first().expect("a main shape");
        assert_eq!(main.name(), row.name());
        for &(ty, cell) in &row.cells {
            assert_eq!(main.occurs(ty), occurs(cell), "{} {ty}", row.name());
        }
        // The alternatives, in any order.
        let mine: Vec<&Row> = alternatives
            .iter()
            .filter(|a| a.exchange == row.exchange && a.response == row.response)
            .collect();
        assert_eq!(others.len(), mine.len(), "{}", row.name());
        for alt in mine {
            let found = others.iter().any(|s| alt.cells.iter().all(|&(ty, c)| s.occurs(ty) == occurs(c)));
            assert!(found, "{} {}: no such shape", row.name(), alt.label);
        }
    }
}

#[test]
fn check_decides_as_the_matrix_one_payload_away_from_every_valid_form() {
    let main_rows = matrix(MAIN);
    let alternatives = matrix(ALTERNATIVES);
    for main in &main_rows {
        // Each form of this message: the main one, then the alternatives.
        let alts = alternatives.iter().filter(|a| a.exchange == main.exchange && a.response == main.response);
        for form in std::iter::once(main).chain(alts) {
            let base = form.base();
            assert_eq!(check_body(main, &base), Ok(()), "{} {}: {base:?}", main.name(), form.label);
            for ty in known() {
                let group = group_of(main.exchange, ty);
                let mut bodies = vec![
                    [base.as_slice(), &[ty]].concat(),
                    [base.as_slice(), &[ty, ty]].concat(),
                    [base.as_slice(), &[ty, ty, ty]].concat(),
                    [base.as_slice(), &group].concat(),
                    [base.as_slice(), &group, &[ty]].concat(),
                ];
                if let Some(at) = base.iter().position(|&t| t == ty) {
                    let mut fewer = base.clone();
                    fewer.remove(at);
                    bodies.push(fewer);
                }
                for body in bodies {
                    let verdict = check_body(main, &body);
                    let want = expected(main, &alternatives, &body);
                    assert_eq!(
                        verdict.is_ok(),
                        want,
                        "{} {}: {body:?}: {verdict:?}",
                        main.name(),
                        form.label
                    );
                    // Off the main form, the error names the main form's
                    // one broken rule.
                    if !want && form.label == main.label {
                        let message = expected_message(main, &body, ty);
                        assert_eq!(verdict, Err(Error::InvalidSyntax(leak(message))), "{body:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn rejects_every_payload_type_on_the_wrong_side_of_sk() {
    for main in matrix(MAIN) {
        let base = main.base();
        let name = main.name();
        for ty in known().into_iter().filter(|t| !t.is_encrypted()) {
            let verdict = if main.label == "clear" {
                rules::check(main.exchange, main.response, &base, &[ty])
            } else {
                rules::check(main.exchange, main.response, &[ty, PayloadType::SK], &base)
            };
            let want = if main.label == "clear" {
                format!("{name} with an Encrypted payload")
            } else {
                format!("{name} with a payload outside SK")
            };
            assert_eq!(verdict, Err(Error::InvalidSyntax(leak(want))), "{name}: {ty}");
        }
    }
}

#[test]
fn requires_exactly_one_encrypted_payload_after_ike_sa_init() {
    for main in matrix(MAIN).into_iter().filter(|r| r.label == "sk") {
        let (x, resp, base, name) = (main.exchange, main.response, main.base(), main.name());
        for encrypted in [PayloadType::SK, PayloadType::SKF] {
            assert_eq!(rules::check(x, resp, &[encrypted], &base), Ok(()), "{name}");
        }
        let without = format!("{name} without an Encrypted payload");
        assert_eq!(rules::check(x, resp, &[], &base), Err(Error::InvalidSyntax(leak(without))));
        let doubled = format!("{name} with more than one Encrypted payload");
        let outer = [PayloadType::SK, PayloadType::SKF];
        assert_eq!(rules::check(x, resp, &outer, &base), Err(Error::InvalidSyntax(leak(doubled))));
    }
}

#[test]
fn ignores_unknown_payload_types_on_either_side() {
    let unknown = [PayloadType(99), PayloadType::NONE, PayloadType(200)];
    for main in matrix(MAIN) {
        let (x, resp) = (main.exchange, main.response);
        let base = [main.base().as_slice(), &unknown].concat();
        let verdict = match main.label {
            "clear" => rules::check(x, resp, &base, &unknown),
            _ => rules::check(x, resp, &[PayloadType(99), PayloadType::SK], &base),
        };
        assert_eq!(verdict, Ok(()), "{}", main.name());
    }
}

#[test]
fn rejects_unknown_exchange_types() {
    let unknown = [0, 33, 38, 43, 44, 255].map(ExchangeType);
    for x in unknown {
        for response in [false, true] {
            let verdict = rules::check(x, response, &[PayloadType::SK], &[]);
            assert_eq!(verdict, Err(Error::InvalidSyntax("unknown exchange type")), "{x}");
        }
    }
}

/// A `&'static str` to compare with the crate's error messages.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

// ----------------------------------------------------- typical messages

/// Checks an IKE_SA_INIT message.
fn init(response: bool, payloads: &[PayloadType]) -> Result<(), Error> {
    rules::check(ExchangeType::IKE_SA_INIT, response, payloads, &[])
}

/// Checks a message of a later exchange, its payloads inside SK.
fn sk(x: ExchangeType, response: bool, inner: &[PayloadType]) -> Result<(), Error> {
    rules::check(x, response, &[P::SK], inner)
}

fn syntax(message: &'static str) -> Result<(), Error> {
    Err(Error::InvalidSyntax(message))
}

#[test]
fn accepts_a_typical_ike_sa_init_exchange() {
    let request = [P::SA, P::KE, P::NONCE, P::NOTIFY, P::NOTIFY, P::NOTIFY, P::VENDOR_ID];
    assert_eq!(init(false, &request), Ok(()));
    let response = [P::SA, P::KE, P::NONCE, P::NOTIFY, P::NOTIFY, P::CERTREQ, P::NOTIFY];
    assert_eq!(init(true, &response), Ok(()));
    // A retry carrying the responder's cookie first.
    assert_eq!(init(false, &[P::NOTIFY, P::SA, P::KE, P::NONCE]), Ok(()));
}

#[test]
fn accepts_an_ike_sa_init_response_that_is_just_a_notify() {
    assert_eq!(init(true, &[P::NOTIFY]), Ok(()));
    assert_eq!(init(true, &[P::NOTIFY, P::VENDOR_ID]), Ok(()));
}

#[test]
fn accepts_typical_ike_auth_exchanges() {
    let x = ExchangeType::IKE_AUTH;
    let request = [P::IDi, P::NOTIFY, P::IDr, P::AUTH, P::CP, P::SA, P::TSi, P::TSr, P::NOTIFY];
    assert_eq!(sk(x, false, &request), Ok(()));
    let with_certs = [P::IDi, P::CERT, P::CERT, P::CERTREQ, P::AUTH, P::SA, P::TSi, P::TSr];
    assert_eq!(sk(x, false, &with_certs), Ok(()));
    assert_eq!(sk(x, true, &[P::IDr, P::CERT, P::AUTH, P::CP, P::SA, P::TSi, P::TSr]), Ok(()));
    // The Child SA failed but the IKE SA stands (section 2.21.2); childless.
    assert_eq!(sk(x, true, &[P::IDr, P::AUTH, P::NOTIFY]), Ok(()));
    assert_eq!(sk(x, false, &[P::IDi, P::AUTH, P::NOTIFY]), Ok(()));
    // Authentication failed: only a Notify.
    assert_eq!(sk(x, true, &[P::NOTIFY]), Ok(()));
}

#[test]
fn accepts_the_ike_auth_messages_of_eap() {
    let x = ExchangeType::IKE_AUTH;
    assert_eq!(sk(x, false, &[P::IDi, P::IDr, P::CP, P::SA, P::TSi, P::TSr]), Ok(()));
    assert_eq!(sk(x, true, &[P::IDr, P::CERT, P::AUTH, P::EAP]), Ok(()));
    assert_eq!(sk(x, false, &[P::EAP]), Ok(()));
    assert_eq!(sk(x, true, &[P::EAP]), Ok(()));
    assert_eq!(sk(x, false, &[P::AUTH]), Ok(()));
    assert_eq!(sk(x, true, &[P::AUTH, P::CP, P::SA, P::TSi, P::TSr]), Ok(()));
    // EAP-only (RFC 5998): the responder sends no AUTH at first.
    assert_eq!(sk(x, true, &[P::IDr, P::EAP]), Ok(()));
}

#[test]
fn accepts_typical_create_child_sa_exchanges() {
    let x = ExchangeType::CREATE_CHILD_SA;
    let rekey_child = [P::NOTIFY, P::SA, P::NONCE, P::KE, P::TSi, P::TSr];
    assert_eq!(sk(x, false, &rekey_child), Ok(()));
    assert_eq!(sk(x, true, &[P::SA, P::NONCE, P::TSi, P::TSr]), Ok(()));
    assert_eq!(sk(x, false, &[P::SA, P::NONCE, P::KE]), Ok(()), "IKE SA rekey");
    assert_eq!(sk(x, true, &[P::SA, P::NONCE, P::KE]), Ok(()), "IKE SA rekey");
    assert_eq!(sk(x, true, &[P::NOTIFY]), Ok(()), "refusal");
}

#[test]
fn accepts_typical_informational_exchanges() {
    let x = ExchangeType::INFORMATIONAL;
    assert_eq!(sk(x, false, &[]), Ok(()), "liveness check");
    assert_eq!(sk(x, true, &[]), Ok(()));
    assert_eq!(sk(x, false, &[P::DELETE, P::DELETE]), Ok(()));
    assert_eq!(sk(x, true, &[P::DELETE]), Ok(()));
    assert_eq!(sk(x, false, &[P::NOTIFY, P::NOTIFY, P::NOTIFY]), Ok(()), "MOBIKE update");
    assert_eq!(sk(x, false, &[P::CP]), Ok(()));
}

#[test]
fn accepts_a_fragment_as_the_encrypted_payload() {
    let inner = [P::IDi, P::AUTH, P::SA, P::TSi, P::TSr];
    assert_eq!(rules::check(ExchangeType::IKE_AUTH, false, &[P::SKF], &inner), Ok(()));
}

#[test]
fn accepts_parsed_messages_through_types() {
    let header = |x: ExchangeType| Header {
        spi_i: 1,
        spi_r: 0,
        next_payload: P::NONE,
        minor_version: 0,
        exchange_type: x,
        flags: Flags::new(true, false),
        message_id: 0,
        length: 0,
    };
    let nonce = [7; 32];
    let sa = Sa {
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::IKE,
            spi: vec![],
            transforms: vec![Transform::new(TransformType::DH, 31)],
        }],
    };
    let bytes = MessageBuilder::new(header(ExchangeType::IKE_SA_INIT))
        .payload(Payload::Sa(sa))
        .payload(Payload::Ke(Ke { group: 31, data: &[2; 32] }))
        .payload(Payload::Nonce(Nonce { data: &nonce }))
        .payload(Payload::Unknown { ty: PayloadType(200), critical: false, body: &[1] })
        .payload(Payload::Notify(Notify::new(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, &[])))
        .build()
        .expect("build");
    let m = Message::parse(&bytes).expect("parse");
    let outer = rules::types(&m.payloads);
    assert_eq!(outer, [P::SA, P::KE, P::NONCE, P::NOTIFY]);
    assert_eq!(rules::check(m.header.exchange_type, m.header.flags.response(), &outer, &[]), Ok(()));

    // IKE_AUTH: the SK body as a decryptor would hand it over.
    let mut plaintext = Vec::new();
    let inner = [
        Payload::IdI(Id { ty: IdType::ID_FQDN, data: b"a.example" }),
        Payload::Auth(Auth { method: AuthMethod::SHARED_KEY_MIC, data: &[3; 32] }),
        Payload::Notify(Notify::new(NotifyType::INITIAL_CONTACT, &[])),
    ];
    let first = emit_inner(&inner, &mut plaintext).expect("emit");
    let bytes = MessageBuilder::new(header(ExchangeType::IKE_AUTH))
        .payload(Payload::Sk(Sk { next_payload: first, body: &[0; 48] }))
        .build()
        .expect("build");
    let m = Message::parse(&bytes).expect("parse");
    let inner = parse_inner(first, &plaintext).expect("parse inner");
    let (outer, inner) = (rules::types(&m.payloads), rules::types(&inner));
    assert_eq!(outer, [P::SK]);
    assert_eq!(rules::check(ExchangeType::IKE_AUTH, false, &outer, &inner), Ok(()));
}

// ------------------------------------------------------------ rejections

#[test]
fn rejects_an_ike_auth_request_without_idi() {
    let x = ExchangeType::IKE_AUTH;
    assert_eq!(sk(x, false, &[P::AUTH, P::SA, P::TSi, P::TSr]), syntax("IKE_AUTH request without IDi"));
    assert_eq!(sk(x, false, &[]), syntax("IKE_AUTH request without IDi"));
}

#[test]
fn rejects_missing_mandatory_payloads() {
    assert_eq!(init(false, &[P::SA, P::NONCE]), syntax("IKE_SA_INIT request without KE"));
    assert_eq!(init(true, &[P::SA, P::KE]), syntax("IKE_SA_INIT response without NONCE"));
    assert_eq!(
        init(false, &[P::NOTIFY]),
        syntax("IKE_SA_INIT request without SA"),
        "no refusal in a request"
    );
    assert_eq!(init(true, &[]), syntax("IKE_SA_INIT response without SA"));
    assert_eq!(init(true, &[P::KE, P::NOTIFY]), syntax("IKE_SA_INIT response without SA"));
    assert_eq!(sk(ExchangeType::IKE_AUTH, true, &[P::IDr]), syntax("IKE_AUTH response without AUTH"));
    let x = ExchangeType::CREATE_CHILD_SA;
    assert_eq!(sk(x, false, &[P::SA]), syntax("CREATE_CHILD_SA request without NONCE"));
    assert_eq!(sk(x, false, &[P::NOTIFY]), syntax("CREATE_CHILD_SA request without SA"));
    assert_eq!(sk(x, true, &[P::NONCE]), syntax("CREATE_CHILD_SA response without SA"));
}

#[test]
fn rejects_duplicated_singletons() {
    assert_eq!(
        init(false, &[P::SA, P::KE, P::NONCE, P::NONCE]),
        syntax("IKE_SA_INIT request with more than one NONCE")
    );
    assert_eq!(
        init(true, &[P::SA, P::SA, P::KE, P::NONCE]),
        syntax("IKE_SA_INIT response with more than one SA")
    );
    assert_eq!(
        sk(ExchangeType::IKE_AUTH, false, &[P::IDi, P::AUTH, P::AUTH]),
        syntax("IKE_AUTH request with more than one AUTH")
    );
    assert_eq!(
        sk(ExchangeType::CREATE_CHILD_SA, true, &[P::SA, P::NONCE, P::KE, P::KE]),
        syntax("CREATE_CHILD_SA response with more than one KE")
    );
}

#[test]
fn rejects_payloads_the_exchange_does_not_carry() {
    let x = ExchangeType::IKE_AUTH;
    assert_eq!(
        sk(x, false, &[P::IDi, P::AUTH, P::DELETE]),
        syntax("IKE_AUTH request with unexpected DELETE")
    );
    assert_eq!(sk(x, true, &[P::IDr, P::AUTH, P::NONCE]), syntax("IKE_AUTH response with unexpected NONCE"));
    assert_eq!(
        init(false, &[P::SA, P::KE, P::NONCE, P::IDi]),
        syntax("IKE_SA_INIT request with unexpected IDi")
    );
    assert_eq!(
        sk(ExchangeType::INFORMATIONAL, false, &[P::SA]),
        syntax("INFORMATIONAL request with unexpected SA")
    );
    // A refusal carries nothing but Notify and Vendor ID payloads.
    assert_eq!(sk(x, true, &[P::NOTIFY, P::EAP, P::AUTH]), syntax("IKE_AUTH response without IDr"));
}

#[test]
fn rejects_traffic_selectors_without_their_partners() {
    let x = ExchangeType::IKE_AUTH;
    let broken = "IKE_AUTH request with some but not all of SA, TSi, TSr";
    assert_eq!(sk(x, false, &[P::IDi, P::AUTH, P::SA]), syntax(broken));
    assert_eq!(sk(x, false, &[P::IDi, P::AUTH, P::TSi, P::TSr]), syntax(broken));
    let broken = "IKE_AUTH response with some but not all of SA, TSi, TSr";
    assert_eq!(sk(x, true, &[P::IDr, P::AUTH, P::SA, P::TSi]), syntax(broken));
    let x = ExchangeType::CREATE_CHILD_SA;
    let broken = "CREATE_CHILD_SA request with some but not all of TSi, TSr";
    assert_eq!(sk(x, false, &[P::SA, P::NONCE, P::TSi]), syntax(broken));
}

#[test]
fn rejects_encryption_in_ike_sa_init() {
    let base = [P::SA, P::KE, P::NONCE];
    let message = syntax("IKE_SA_INIT request with an Encrypted payload");
    assert_eq!(init(false, &[P::SK]), message);
    assert_eq!(init(false, &[P::NOTIFY, P::SKF]), message);
    assert_eq!(rules::check(ExchangeType::IKE_SA_INIT, false, &base, &[P::NOTIFY]), message);
    assert_eq!(init(true, &[P::NOTIFY, P::SK]), syntax("IKE_SA_INIT response with an Encrypted payload"));
}

#[test]
fn rejects_clear_payloads_after_ike_sa_init() {
    let x = ExchangeType::IKE_AUTH;
    let inner = [P::IDi, P::AUTH];
    assert_eq!(rules::check(x, false, &inner, &[]), syntax("IKE_AUTH request without an Encrypted payload"));
    assert_eq!(
        rules::check(x, false, &[P::NOTIFY, P::SK], &inner),
        syntax("IKE_AUTH request with a payload outside SK")
    );
    let x = ExchangeType::INFORMATIONAL;
    assert_eq!(
        rules::check(x, true, &[P::NOTIFY], &[]),
        syntax("INFORMATIONAL response without an Encrypted payload"),
        "an unprotected notice is not an INFORMATIONAL exchange"
    );
    assert_eq!(sk(x, false, &[P::SK]), syntax("INFORMATIONAL request with unexpected SK"));
}
