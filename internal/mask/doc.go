// Package mask finds sensitive values in text and masks them before they
// leave the gateway (PCI DSS 3.4.1 for card numbers). It owns the detectors,
// the partial masks, and the column strategies; it knows nothing of any wire
// protocol. The protocol layer calls it once per value: a DataRow column, an
// ErrorResponse field, a CopyData line, a recorded bind parameter.
//
// The hot path is [Masker.Scan]: one pass over the value that classifies 64
// bytes at a time into bitmaps of digits and '@' (eight bytes per register
// operation), looks closer only at digit runs of the lengths a detector cares
// about, and does not allocate. Only when it
// reports a find does the caller pay for [Masker.AppendMask]. Column rules
// that hide a whole value regardless of content use [Masker.AppendStrategy].
//
// # What each detector catches
//
// PAN (payment card number): a run of 12–19 digits, or digits in groups with
// one consistent separator (all single spaces or all single dashes; first
// group of four, later groups of one to six digits: "4111 1111 1111 1111",
// "3782 822463 10005"), whose prefix and length belong to a known network
// (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro, Mir) and
// which passes Luhn. It is found inside JSON, CSV, arrays, prose and error
// messages. Letters next to the digits do not protect them:
// "x4111111111111111" is masked, since the card number is as readable there
// as anywhere. Deliberately not PANs:
//   - a 12–19 digit stretch of a longer digit run ("ORD-41111111111111112222");
//   - numbers of unknown networks or failing Luhn (timestamps, most ids);
//   - digits joined to digits by '.' (decimals, floats, dotted numbers);
//   - a run of at most 15 digits right after '+' (E.164 phone numbers);
//   - digits inside a run of 32 or more hex characters (digests, hex bytea,
//     dashless UUIDs) or inside an 8-4-4-4-12 UUID.
//
// For grouped digits the longest run of leading groups that is a PAN wins, so
// a group after the card ("4111 1111 1111 1111 2027") does not hide it.
//
// E-mail: local part of letters, digits and ._%+- , then '@' and a domain of
// at least two labels ending in an alphabetic top-level label. Bare hosts
// ("postgres@db"), quoted local parts and the rarer RFC 5322 characters are
// not matched.
//
// IBAN: a country code of a country that issues IBANs, two check digits and
// the rest, 15–34 characters, valid under mod-97; written without spaces or
// in groups of four separated by single spaces, in either letter case.
// Per-country lengths are not checked: mod-97 already rejects 96 in 97
// random candidates, and a wrong entry in a length table would leak.
//
// SSN: AAA-GG-SSSS with dashes, minus the numbers never issued (area 000,
// 666, 900–999, group 00, serial 0000) and minus longer dash-chains of
// digits. Nine bare digits are not matched: too many other numbers look like
// them.
//
// Custom detectors: any RE2 regular expression, compiled once by New. They
// run before the built-in ones and cost what package regexp costs (tens of
// MB/s, not GB/s).
//
// # What the masks show
//
// A PAN keeps at most its first six and last four digits (or only the last
// four), a partial mask always hides at least five characters (so a 12-digit
// PAN shows its first three, not six), separators stay, and each hidden digit
// becomes the mask character, so the output is as long as the input. An
// e-mail keeps the first character of its local part and its domain
// ("j***@example.com"), an IBAN its country code, check digits and last four
// characters, an SSN its serial ("***-**-6789"). All built-in masks keep the
// length. Output is re-scanned until no built-in detector fires on it.
//
// # Limits
//
// Masking protects against accidental disclosure in results, logs and
// recordings. It is not a defence against a client that sets out to
// exfiltrate: SQL can reverse, split, encode or hash a value before it is
// returned, and no scanner of output can see through that. Column strategies
// and the statement policy are the controls for such columns. Also not
// detected: card numbers with other separators ("4111.1111.1111.1111"),
// mixed separators, runs of several spaces, and values split across two
// calls (callers pass whole values).
package mask
