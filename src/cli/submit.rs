//! `glasslog submit`: send a signed declaration to a log, verify the answer, keep the proof.
//!
//! The envelope is checked locally first (signatures under the given public keys, the
//! declaration rules), then submitted. The reply's checkpoint is verified against the log's key
//! (`--log-key`, or the key the server announces, which is then printed so that it can be pinned),
//! and its inclusion proof against that checkpoint. The proof is written as a proof bundle
//! ([`crate::client::bundle`]) beside the declaration: it proves the entry's inclusion offline, for good.
//!
//! The reply's checkpoint is also checked against the last one this user accepted for the log
//! (the split-view state, [`crate::client::trust_state`], shared with `verify` and `audit`): the log must
//! prove it consistent before it is stored. A log that cannot is reported as
//! `inconsistent-checkpoint` with both signed checkpoints, and `submit` exits 1; the bundle is
//! still written, since it proves what the log signed.
//!
//! What this is not: a monitor. A bundle proves the entry is in the tree the checkpoint signs; that
//! the log shows everyone the same tree is for monitors and witnesses to check.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tonic::transport::Identity;

use super::CliError;
use crate::admission::declaration::Declaration;
use crate::admission::dsse;
use crate::admission::keys::KeyCache;
use crate::admission::{self, AdmissionError, Policy};
use crate::check::Finding;
use crate::client::bundle::ProofBundle;
use crate::client::trust_state::{Accepted, TrustError, TrustState};
use crate::client::{ClientError, LogClient, Submitted};
use crate::files;
use crate::proto::{self, transparency_log_client::TransparencyLogClient};
use crate::tlog::note::LogVerifier;
use crate::tlog::policy::{Cosignatures, WitnessPolicy};

/// Largest declaration read; a log entry is far smaller ([`crate::entry::MAX_LEAF_BYTES`]),
/// which is checked once the envelope is read.
const MAX_ENVELOPE_BYTES: u64 = 16 << 20;

#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// The signed declaration written by glasslog declare (a DSSE envelope, JSON).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The log server's URL, e.g. http://127.0.0.1:50051.
    #[arg(long, value_name = "URL")]
    server: String,
    /// The log's verifier key (<origin>+<key id>+<base64>), pinned out of band. Without it the
    /// key the server announces is trusted for this submission and printed, so you can pin it.
    #[arg(long, value_name = "VKEY")]
    log_key: Option<String>,
    /// A public key (PEM) of the envelope's signers, e.g. the KEY.pub glasslog keygen wrote;
    /// repeat it for each signer. Every signature must verify under one of them.
    /// [default: FILE.pub, which `glasslog declare` writes beside the envelope]
    #[arg(long, value_name = "FILE")]
    public_key: Vec<PathBuf>,
    /// Where to write the proof bundle [default: FILE.bundle.json].
    #[arg(long, value_name = "FILE")]
    bundle_out: Option<PathBuf>,
    /// The split-view state file [default: one per log key under
    /// $XDG_CONFIG_HOME/glasslog/checkpoints or ~/.config/glasslog/checkpoints].
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// A client certificate (PEM) to present over TLS, for a log that accepts submissions only
    /// from its publishers' CA; needs an https:// --server and --tls-client-key.
    #[arg(long, value_name = "FILE", requires = "tls_client_key")]
    tls_client_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-client-cert.
    #[arg(long, value_name = "FILE", requires = "tls_client_cert")]
    tls_client_key: Option<PathBuf>,
    /// Seconds to wait for the server to connect and to answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
    /// A C2SP tlog-policy file: wait until a checkpoint covering the entry meets its quorum of
    /// witness cosignatures, and write the bundle against that checkpoint with the
    /// cosignatures in it.
    #[arg(long, value_name = "FILE")]
    witness_policy: Option<PathBuf>,
    /// With --witness-policy, seconds to wait for a witnessed checkpoint that covers the entry.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    witness_timeout: u64,
}

/// What the log answered, verified, and what the split-view check made of it.
struct Outcome {
    submitted: Submitted,
    /// With a witness policy: the cosignature lines of `submitted.note`.
    cosignatures: Vec<String>,
    vkey: String,
    trust: Result<Accepted, TrustError>,
    state_path: PathBuf,
}

pub fn run(args: SubmitArgs) -> Result<ExitCode, CliError> {
    let key_files = match args.public_key.as_slice() {
        [] => {
            let beside = files::with_suffix(&args.file, ".pub");
            if !beside.exists() {
                return Err(format!(
                    "no signer public key: give --public-key FILE (declare writes {} beside the envelope)",
                    beside.display()
                )
                .into());
            }
            vec![beside]
        }
        given => given.to_vec(),
    };
    let envelope = read_envelope(&args.file)?;
    let keys = read_public_keys(&key_files)?;
    let declaration = check_locally(&args.file, &envelope, &keys)?;
    let policy = args
        .witness_policy
        .as_deref()
        .map(super::load_witness_policy)
        .transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let Outcome {
        submitted,
        cosignatures,
        vkey,
        trust,
        state_path,
    } = runtime.block_on(submit(&args, envelope.clone(), keys, policy.as_ref()))?;
    let bundle = ProofBundle {
        index: submitted.index,
        leaf_data: submitted.leaf_data.clone(),
        tree_size: submitted.checkpoint.size,
        proof: submitted.proof.clone(),
        checkpoint: submitted.note.clone(),
        log_verifier_key: vkey,
        cosignatures,
    };
    check_logged(&bundle, &submitted, &envelope, &declaration)?;
    if let Some(policy) = &policy {
        bundle
            .verify_witnessed(policy)
            .map_err(|e| format!("the witnessed bundle does not verify: {e}"))?;
    }
    let path = args
        .bundle_out
        .clone()
        .unwrap_or_else(|| files::with_suffix(&args.file, ".bundle.json"));
    write_replacing(&path, &bundle.to_json())?;
    report(&bundle, &submitted, &declaration, &path);
    let state = state_path.display();
    match trust {
        Ok(accepted) => {
            println!("split-view check: {}", describe(&accepted));
            Ok(ExitCode::SUCCESS)
        }
        Err(TrustError::SplitView(split)) => {
            println!("split-view check: inconsistent-checkpoint");
            eprintln!("{}", Finding::split_view(&split).to_text());
            eprintln!(
                "The entry is logged and the bundle proves it, but this log has shown two \
                 different histories: the stored checkpoint in {state} is kept."
            );
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(format!(
            "the entry is logged and the bundle written, but its checkpoint could not be checked \
             against the one stored in {state}: {e}"
        )
        .into()),
    }
}

/// One word for what the split-view check did, then its detail.
fn describe(accepted: &Accepted) -> String {
    match accepted {
        Accepted::FirstUse => "first-use (no checkpoint of this log was stored)".into(),
        Accepted::Same => "same (the stored checkpoint)".into(),
        Accepted::Extended { from_size: 0 } => {
            "consistent-from-0 (the stored checkpoint was of the empty tree)".into()
        }
        Accepted::Extended { from_size } => {
            format!("consistent-from-{from_size} (a consistency proof from the stored checkpoint verified)")
        }
        Accepted::Older { stored_size } => format!(
            "prefix-of-{stored_size} (the stored checkpoint is newer; a proof shows this one is its prefix)"
        ),
    }
}

fn read_envelope(path: &Path) -> Result<Vec<u8>, CliError> {
    use std::io::Read;
    let context =
        |e: std::io::Error| format!("cannot read the declaration {}: {e}", path.display());
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(context)?
        .take(MAX_ENVELOPE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(context)?;
    if bytes.len() as u64 > MAX_ENVELOPE_BYTES {
        return Err(format!(
            "{} is larger than {MAX_ENVELOPE_BYTES} bytes; it is not a declaration",
            path.display()
        )
        .into());
    }
    Ok(bytes)
}

fn read_public_keys(paths: &[PathBuf]) -> Result<Vec<String>, CliError> {
    paths
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read the public key {}: {e}", p.display()).into())
        })
        .collect()
}

/// The checks the server makes (references aside: they need the log), made here first so that
/// errors name local files; the leaf's length too ([`crate::entry::MAX_LEAF_BYTES`]).
fn check_locally(file: &Path, envelope: &[u8], keys: &[String]) -> Result<Declaration, CliError> {
    let admitted =
        admission::admit_envelope(envelope, keys, &KeyCache::default(), &Policy::default())
            .map_err(|e| match e {
                AdmissionError::Envelope(e) => format!(
                "{} does not verify under the given --public-key files: {e} (give the public key \
                 of every signer, and only those)",
                file.display()
            ),
                e => format!("{} is not a valid declaration: {e}", file.display()),
            })?;
    let leaf = super::leaf_len_now(&admitted, envelope.len());
    crate::entry::check_leaf_len(leaf)
        .map_err(|e| format!("{} cannot be logged: {e}", file.display()))?;
    admitted
        .declaration
        .ok_or_else(|| format!("{} is not a glasslog declaration", file.display()).into())
}

/// The client certificate and key of `--tls-client-cert`/`--tls-client-key`, read and checked
/// to be usable before anything is sent.
fn client_identity(args: &SubmitArgs) -> Result<Option<Identity>, CliError> {
    let (Some(cert), Some(key)) = (&args.tls_client_cert, &args.tls_client_key) else {
        return Ok(None);
    };
    if !args.server.starts_with("https://") {
        return Err(format!(
            "--tls-client-cert is presented over TLS only; --server {:?} is not https://",
            args.server
        )
        .into());
    }
    let read = |flag: &str, path: &Path, what: &str| -> Result<Vec<u8>, CliError> {
        let pem = std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
        if !String::from_utf8_lossy(&pem).contains(&format!("-----BEGIN {what}")) {
            return Err(format!("{flag} {}: no PEM {what} in it", path.display()).into());
        }
        Ok(pem)
    };
    let cert = read("--tls-client-cert", cert, "CERTIFICATE")?;
    let key = read("--tls-client-key", key, "")?;
    Ok(Some(Identity::from_pem(cert, key)))
}

/// Connects, learns or pins the log key, submits, verifies the reply, and checks its checkpoint
/// against the split-view state.
async fn submit(
    args: &SubmitArgs,
    envelope: Vec<u8>,
    keys: Vec<String>,
    policy: Option<&WitnessPolicy>,
) -> Result<Outcome, CliError> {
    if !args.server.contains("://") {
        return Err(format!(
            "--server {:?} has no scheme; write e.g. http://{}",
            args.server, args.server
        )
        .into());
    }
    let identity = client_identity(args)?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let channel = crate::client::endpoint_with_identity(&args.server, identity)
        .map_err(|e| format!("--server {:?} is not a valid URL: {e}", args.server))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {}: {}", args.server, with_causes(&e)))?;
    let vkey = match &args.log_key {
        Some(k) => k.clone(),
        None => announced_key(channel.clone()).await?,
    };
    let verifier = LogVerifier::new(&vkey).map_err(|e| format!("--log-key: {e}"))?;
    // Opened before anything is sent, so that an unusable state file stops the submission.
    let mut state = TrustState::open(&verifier, args.state.as_deref())?;
    let client = LogClient::with_channel(channel, verifier);
    if let Some(policy) = policy {
        if !policy.covers_log(client.verifier()) {
            return Err(format!("--witness-policy lists logs, and not this one ({vkey})").into());
        }
    }
    let submitted = client
        .submit(envelope, keys)
        .await
        .map_err(|e| explain(e, &args.server))?;
    let (submitted, cosignatures) = match policy {
        Some(policy) => witnessed(&client, policy, submitted, args).await?,
        None => (submitted, Vec::new()),
    };
    // With a policy, the state stores the cosigned note (its log signature is what is checked).
    let stored_note = format!("{}{}", submitted.note, cosignatures.concat());
    let trust = state
        .check_and_update(&client, &submitted.checkpoint, &stored_note)
        .await;
    Ok(Outcome {
        submitted,
        cosignatures,
        vkey,
        trust,
        state_path: state.path().to_path_buf(),
    })
}

/// Waits for a witnessed checkpoint that covers the entry, and returns the submission proved
/// against it, with its cosignature lines.
async fn witnessed(
    client: &LogClient,
    policy: &WitnessPolicy,
    submitted: Submitted,
    args: &SubmitArgs,
) -> Result<(Submitted, Vec<String>), CliError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.witness_timeout);
    let index = submitted.index;
    let mut last = String::from("none yet");
    loop {
        match client.witnessed_checkpoint(policy).await {
            Ok((checkpoint, note, cosigs)) if checkpoint.size > index => {
                let proof = client
                    .verify_inclusion(index, &submitted.leaf_data, &checkpoint)
                    .await
                    .map_err(|e| explain(e, &args.server))?;
                client
                    .verify_consistency(&submitted.checkpoint, &checkpoint)
                    .await
                    .map_err(|e| explain(e, &args.server))?;
                let log_note = log_signed_part(&note, &cosigs);
                let lines = cosigs.lines.into_iter().flatten().collect();
                let witnessed = Submitted {
                    checkpoint,
                    note: log_note,
                    proof,
                    ..submitted
                };
                return Ok((witnessed, lines));
            }
            Ok((checkpoint, _, _)) => last = format!("size {}", checkpoint.size),
            Err(ClientError::Rpc(s)) if s.code() == tonic::Code::NotFound => {}
            Err(ClientError::Rpc(s)) if s.code() == tonic::Code::FailedPrecondition => {
                return Err(format!(
                    "the entry is logged at index {index}, but this log has no witness policy: {}",
                    s.message()
                )
                .into())
            }
            Err(e @ ClientError::Policy(_)) => {
                return Err(format!("the entry is logged at index {index}, but {e}").into())
            }
            Err(e) => return Err(explain(e, &args.server)),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "the entry is logged at index {index}, but no checkpoint covering it met the \
                 witness policy within {} s (latest witnessed: {last}). Submitting again is safe: \
                 it is deduplicated and waits again.",
                args.witness_timeout
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A cosigned note without the policy's cosignature lines: the log's signed note, as a bundle's
/// `checkpoint` holds it.
fn log_signed_part(note: &str, cosigs: &Cosignatures) -> String {
    let mut text = note.to_string();
    for line in cosigs.lines.iter().flatten() {
        text = text.replacen(line.as_str(), "", 1);
    }
    text
}

/// The log key the server announces (GetLogInfo), trusted on first use and printed.
async fn announced_key(channel: tonic::transport::Channel) -> Result<String, CliError> {
    let info = TransparencyLogClient::new(channel)
        .get_log_info(proto::GetLogInfoRequest {})
        .await
        .map_err(|s| {
            format!(
                "cannot get the log's key from the server: {}: {}",
                s.code(),
                s.message()
            )
        })?
        .into_inner();
    eprintln!(
        "warning: no --log-key given; trusting the key the server announces for log {}:\n  {}\n\
         Pin it: check it out of band once, then pass --log-key to every later submit.",
        info.origin, info.verifier_key
    );
    Ok(info.verifier_key)
}

fn explain(e: ClientError, server: &str) -> CliError {
    match e {
        ClientError::Rpc(status) => match status.code() {
            tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition | tonic::Code::NotFound => {
                format!("the log refused the declaration: {}", status.message()).into()
            }
            tonic::Code::ResourceExhausted => format!("the log refused the declaration: {}", status.message()).into(),
            tonic::Code::Unauthenticated => format!(
                "the log refused the submission: {} (present one with --tls-client-cert and \
                 --tls-client-key)",
                status.message()
            )
            .into(),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => format!(
                "the log at {server} is unavailable ({}); submitting again is safe, a resubmission is \
                 deduplicated",
                status.message()
            )
            .into(),
            code => format!("the log answered {code}: {}", status.message()).into(),
        },
        ClientError::Connect { url, source } => format!("cannot connect to {url}: {}", with_causes(&source)).into(),
        other => format!(
            "the log's answer does not verify, so nothing it said can be trusted: {other} (if --log-key \
             is right, report this log)"
        )
        .into(),
    }
}

/// An error and its causes, `a: b: c` (tonic's transport errors say little at the top).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The bundle verifies offline, and what it proves logged is the declaration sent.
fn check_logged(
    bundle: &ProofBundle,
    submitted: &Submitted,
    envelope: &[u8],
    declaration: &Declaration,
) -> Result<(), CliError> {
    let verified = bundle
        .verify()
        .map_err(|e| format!("the log's answer does not make a valid proof bundle: {e}"))?;
    let logged = &verified.envelope;
    if !submitted.duplicate && verified.entry.envelope != envelope {
        return Err("the log reports a new entry whose envelope is not the one submitted".into());
    }
    let sent = dsse::Envelope::parse(envelope)?;
    if logged.payload != sent.payload || logged.payload_type != sent.payload_type {
        return Err(format!(
            "the logged entry at index {} is not the declaration submitted ({})",
            bundle.index,
            declaration.name()
        )
        .into());
    }
    Ok(())
}

/// Writes `data` to `path` through a temporary file and a rename, so a reader never sees half.
fn write_replacing(path: &Path, data: &[u8]) -> Result<(), CliError> {
    files::write_atomically(path, data, 0o666).map_err(|e| {
        format!(
            "cannot write the proof bundle {}: {}",
            path.display(),
            e.source
        )
        .into()
    })
}

fn report(bundle: &ProofBundle, submitted: &Submitted, d: &Declaration, path: &Path) {
    if submitted.duplicate {
        eprintln!(
            "This declaration was already in the log (the same statement signed by the same keys); \
             the bundle proves the existing entry."
        );
    }
    println!("index: {}", bundle.index);
    println!("name: {}", d.name());
    println!("digest: sha256:{}", d.subject_digest());
    println!("tree size: {}", bundle.tree_size);
    println!("log key: {}", bundle.log_verifier_key);
    if !bundle.cosignatures.is_empty() {
        println!("witness cosignatures: {}", bundle.cosignatures.len());
    }
    println!("bundle: {}", path.display());
}
