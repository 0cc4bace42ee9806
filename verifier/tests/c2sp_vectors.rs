//! C2SP signed-note and tlog-checkpoint: the vector in `../shared/testdata/c2sp/`, the signed-note
//! spec's example, and Go's `golang.org/x/mod/sumdb/note` examples.

mod common;

use blockdb_verifier::{
    Checkpoint, Note, NoteError, NoteSigner, SignedCheckpoint, TreeSize, TrustPolicy, VerifierKey,
};
use common::{h, sha256, test_signer, testdata};

const TEST_VKEY: &str =
    "example.com/blockdb-test+46a7145c+AbQM/jcCKpA/w/BOlpfF9JVXkMfgTaerM+SDmVCmGxF1";

#[test]
fn checkpoint_8_leaf_reproduced_byte_for_byte() {
    let Some(path) = testdata("c2sp/checkpoint-8-leaf.txt") else { return };
    let want = std::fs::read(&path).expect("read vector");
    assert_eq!(want.len(), 195);

    let signer = test_signer();
    assert_eq!(
        hex::encode(sha256(b"blockdb test key")),
        "e91f1296f1c0020942752dccde03137825f9fb5232bac2efbfbecfeaa488d075"
    );
    assert_eq!(
        hex::encode(signer.verifier_key().public_key().as_bytes()),
        "b40cfe37022a903fc3f04e9697c5f4955790c7e04da7ab33e4839950a61b1175"
    );
    assert_eq!(signer.verifier_key().key_id(), 0x46a7_145c);
    assert_eq!(signer.verifier_key().to_string(), TEST_VKEY);

    let checkpoint = Checkpoint {
        origin: "example.com/blockdb-test".into(),
        size: TreeSize(8),
        root: h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
        extensions: vec![],
    };
    let signed = checkpoint.sign(&[&signer]).expect("signs");
    assert_eq!(signed.to_text().as_bytes(), want.as_slice());

    let parsed = SignedCheckpoint::parse(&want).expect("parses");
    assert_eq!(parsed.checkpoint(), &checkpoint);
    assert_eq!(parsed.to_text().as_bytes(), want.as_slice(), "format(parse(x)) == x");
    let policy = TrustPolicy::new(vec![TEST_VKEY.parse().expect("vkey")], 1).expect("policy");
    let verified = policy.verify(&parsed).expect("verifies");
    assert_eq!(verified.signed_by, vec![TEST_VKEY.to_owned()]);
}

#[test]
fn signed_note_spec_example_verifies() {
    let vkey: VerifierKey = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
        .parse()
        .expect("vkey");
    let text = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    let note = Note::parse(text.as_bytes()).expect("parses");
    assert_eq!(note.text(), "This is an example message.\n");
    let keys = [vkey];
    let signed_by = note.verify(&keys).expect("verifies");
    assert_eq!(signed_by.len(), 1);
    assert_eq!(note.to_text(), text);
    // The same note with the message changed by one character fails.
    let forged = text.replace("example message", "example massage");
    let forged = Note::parse(forged.as_bytes()).expect("parses");
    assert!(matches!(forged.verify(&keys), Err(NoteError::InvalidSignature { .. })));
}

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

#[test]
fn go_note_examples_multiple_and_unknown_signatures() {
    let peter: VerifierKey = PETER_VKEY.parse().expect("vkey");
    let enoch: VerifierKey = ENOCH_VKEY.parse().expect("vkey");
    let both = format!("{PETER_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    let note = Note::parse(both.as_bytes()).expect("parses");
    assert_eq!(note.signatures().len(), 2);

    // Each key alone: the other signature is by an unknown key and ignored.
    for key in [&peter, &enoch] {
        let keys = [key.clone()];
        let signed_by = note.verify(&keys).expect("verifies");
        assert_eq!(signed_by, vec![key]);
    }
    let keys = [peter.clone(), enoch.clone()];
    assert_eq!(note.verify(&keys).expect("verifies").len(), 2);

    // Threshold 2 of the two keys holds; with only Peter's signature it does not.
    let only_peter = Note::parse(format!("{PETER_TEXT}\n{PETER_SIG}").as_bytes()).expect("parses");
    assert_eq!(only_peter.verify(&keys).expect("verifies").len(), 1);

    // Signed by nobody we know.
    let stranger = NoteSigner::from_seed("Stranger", &sha256(b"stranger")).expect("signer");
    let keys = [stranger.verifier_key().clone()];
    assert_eq!(note.verify(&keys), Err(NoteError::NoKnownSignature));
}

#[test]
fn signing_reproduces_and_round_trips() {
    let signer = test_signer();
    let note = Note::sign("hello\n", &[&signer]).expect("signs");
    let reparsed = Note::parse(note.to_text().as_bytes()).expect("parses");
    assert_eq!(reparsed, note);
    let keys = [signer.verifier_key().clone()];
    assert_eq!(reparsed.verify(&keys).expect("verifies").len(), 1);

    let secret = signer.to_secret_string();
    let back = NoteSigner::from_secret_string(&secret).expect("parses");
    assert_eq!(back.verifier_key(), signer.verifier_key());
}

#[test]
fn checkpoint_text_rules() {
    let ok = "example.com/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next one\n";
    let c = Checkpoint::from_text(ok).expect("parses");
    assert_eq!(c.size, TreeSize(0));
    assert_eq!(c.root, blockdb_verifier::empty_root());
    assert_eq!(c.extensions, vec!["ext one".to_owned()]);
    assert_eq!(c.to_text(), ok);
    for bad in [
        "example.com/log\n8\n", // no root
        "example.com/log\n08\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", // leading zero
        "example.com/log\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", // sign
        "example.com/log\n8\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuF=\n", // short root
        "\n8\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", // no origin
        "example.com/log\n18446744073709551616\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
    ] {
        assert!(Checkpoint::from_text(bad).is_err(), "{bad:?} must be refused");
    }
}
