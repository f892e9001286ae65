//! The external-backend line protocol (`docs/protocol.md`): JSON requests and replies, one
//! per line, shared by the client ([`crate::backends::external`]) and the server
//! (`javm-harness serve`).

use serde::{Deserialize, Serialize};

use javm_engine::{Exit, NUM_REGS};

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// A request from the harness to a backend process.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// First request: the harness's protocol version.
    Hello {
        version: u32,
    },
    /// Loads a blob (hex) and resets the machine: registers 0, pc 0, gas 0, no memory. A blob
    /// that does not decode is accepted and panics on the first run.
    Load {
        program: String,
        /// `a`, `b` or `j`.
        profile: String,
        /// `block-unit`, `block-table` or `instruction`.
        gas_model: String,
        /// `[pc, cost]` pairs, for `block-table`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        block_costs: Vec<(u32, u64)>,
    },
    Map {
        address: u32,
        length: u64,
        writable: bool,
    },
    /// Host write (hex bytes), ignoring write protection.
    Write {
        address: u32,
        bytes: String,
    },
    Read {
        address: u32,
        length: u64,
    },
    SetRegs {
        regs: [u64; NUM_REGS],
    },
    SetPc {
        pc: u32,
    },
    SetGas {
        gas: i64,
    },
    Run,
    Step,
    /// Every mapped page.
    Pages,
}

/// A mapped page in a [`Reply`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Page {
    pub address: u32,
    pub writable: bool,
    /// 4096 bytes as hex.
    pub bytes: String,
}

/// The machine state every reply after `load`, `set-*`, `run` and `step` carries.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub regs: [u64; NUM_REGS],
    pub pc: u32,
    pub resume_pc: u32,
    pub gas: i64,
}

/// A reply: `ok` and what the request asked for, or `ok: false` with an error.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// After `run` (always) and `step` (null while the machine keeps running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitReply>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<Vec<Page>>,
}

/// An exit: `{"kind": "halt" | "trap" | "panic" | "out-of-gas" | "page-fault" |
/// "host-call" | "ecall", "address": page (page-fault), "id": u32 (host-call)}`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExitReply {
    pub kind: ExitKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ExitKind {
    Halt,
    Trap,
    Panic,
    OutOfGas,
    PageFault,
    HostCall,
    Ecall,
}

impl ExitReply {
    pub fn from_exit(exit: Exit) -> ExitReply {
        let (kind, address, id) = match exit {
            Exit::Halt => (ExitKind::Halt, None, None),
            Exit::Trap => (ExitKind::Trap, None, None),
            Exit::Panic => (ExitKind::Panic, None, None),
            Exit::OutOfGas => (ExitKind::OutOfGas, None, None),
            Exit::PageFault(a) => (ExitKind::PageFault, Some(a), None),
            Exit::HostCall(i) => (ExitKind::HostCall, None, Some(i)),
            Exit::Ecall => (ExitKind::Ecall, None, None),
        };
        ExitReply { kind, address, id }
    }

    pub fn to_exit(self) -> Result<Exit, String> {
        Ok(match self.kind {
            ExitKind::Halt => Exit::Halt,
            ExitKind::Trap => Exit::Trap,
            ExitKind::Panic => Exit::Panic,
            ExitKind::OutOfGas => Exit::OutOfGas,
            ExitKind::PageFault => Exit::PageFault(self.address.ok_or("page-fault exit without `address`")?),
            ExitKind::HostCall => Exit::HostCall(self.id.ok_or("host-call exit without `id`")?),
            ExitKind::Ecall => Exit::Ecall,
        })
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub fn unhex(text: &str) -> Result<Vec<u8>, String> {
    if text.len() & 1 == 1 {
        return Err("hex text has an odd number of digits".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(|| format!("`{}` is not hex", text.get(i..i + 2).unwrap_or("?")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_the_documented_form() {
        let r = Request::SetPc { pc: 5 };
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"op":"set-pc","pc":5}"#);
        let r: Request = serde_json::from_str(r#"{"op":"run"}"#).unwrap();
        assert_eq!(r, Request::Run);
        assert!(serde_json::from_str::<Request>(r#"{"op":"frobnicate"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"op":"set-pc","pc":1,"x":1}"#).is_err());
        let e = ExitReply::from_exit(Exit::PageFault(0x21000));
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"kind":"page-fault","address":135168}"#);
        assert_eq!(e.to_exit(), Ok(Exit::PageFault(0x21000)));
        assert_eq!(unhex(&hex(&[0, 255, 16])).unwrap(), vec![0, 255, 16]);
        assert!(unhex("abc").is_err() && unhex("zz").is_err());
    }
}
