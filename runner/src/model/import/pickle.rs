//! A restricted unpickler for the `data.pkl` of a `torch.save` archive. Python's unpickler
//! imports and calls whatever a pickle names, so loading a downloaded checkpoint with it can
//! run arbitrary code. This one executes nothing: it knows the opcodes that plain data needs
//! (dicts, lists, tuples, strings, numbers, booleans, None) and exactly the globals a state
//! dict needs — `collections.OrderedDict`, torch's tensor and parameter rebuild functions
//! and the `torch.*Storage` types — each interpreted here in Rust. Any other global is
//! refused when it is read, before anything could use it.
//!
//! Tensors are not materialised: a tensor is a reference to a storage entry of the archive
//! plus its offset, shape and strides, so the optimizer state of a checkpoint is never read.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use tch::Kind;

/// Why a pickle was not read, and where.
#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    #[error("the pickle calls `{0}`: not a plain state dict; refusing to run pickle code")]
    Refused(String),
    #[error("byte {at}: {message}")]
    Malformed { at: usize, message: String },
}

/// A storage of the archive, named by its key (`data/<key>`).
#[derive(Debug)]
pub struct StorageRef {
    pub key: String,
    pub kind: Kind,
    /// Number of elements.
    pub numel: i64,
}

/// A tensor as torch's `_rebuild_tensor_v2` describes it: a view of a storage.
#[derive(Debug)]
pub struct TensorRef {
    pub storage: Rc<StorageRef>,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

/// The callables a state dict's pickle may name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildParameter,
    Storage(Kind),
}

impl Global {
    fn resolve(module: &str, name: &str) -> Result<Self, PickleError> {
        let storage = |kind| Ok(Global::Storage(kind));
        match (module, name) {
            ("collections", "OrderedDict") => Ok(Global::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Ok(Global::RebuildTensor),
            ("torch._utils", "_rebuild_parameter") => Ok(Global::RebuildParameter),
            ("torch", "FloatStorage") => storage(Kind::Float),
            ("torch", "HalfStorage") => storage(Kind::Half),
            ("torch", "BFloat16Storage") => storage(Kind::BFloat16),
            ("torch", "DoubleStorage") => storage(Kind::Double),
            ("torch", "LongStorage") => storage(Kind::Int64),
            ("torch", "IntStorage") => storage(Kind::Int),
            ("torch", "ShortStorage") => storage(Kind::Int16),
            ("torch", "CharStorage") => storage(Kind::Int8),
            ("torch", "ByteStorage") => storage(Kind::Uint8),
            ("torch", "BoolStorage") => storage(Kind::Bool),
            _ => Err(PickleError::Refused(format!("{module}.{name}"))),
        }
    }
}

/// A Python value. Lists and dicts are shared and mutable, as in Python: the memo hands out
/// the same object that later opcodes fill. Scalars that no tensor description uses (bools,
/// floats, bytes, integers wider than 64 bits) keep only their type.
#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool,
    Int(i64),
    BigInt,
    Float,
    Str(String),
    Bytes,
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    /// Entries in insertion order; a repeated key keeps both, the last one wins on lookup.
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    /// The Python type name, for errors.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool => "bool",
            Value::Int(_) | Value::BigInt => "int",
            Value::Float => "float",
            Value::Str(_) => "str",
            Value::Bytes => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }

    fn dict() -> Self {
        Value::Dict(Rc::new(RefCell::new(Vec::new())))
    }
}

/// Nested containers are freed with a work list rather than recursively, so a pickle that
/// nests a million lists cannot overflow the stack when it is dropped.
impl Drop for Value {
    fn drop(&mut self) {
        let mut work = Vec::new();
        take_children(self, &mut work);
        while let Some(mut v) = work.pop() {
            take_children(&mut v, &mut work);
        }
    }
}

/// Moves the children of `v` into `work` when `v` holds the last reference to them.
fn take_children(v: &mut Value, work: &mut Vec<Value>) {
    match v {
        Value::Tuple(t) => {
            if let Some(items) = Rc::get_mut(t) {
                work.append(items);
            }
        }
        Value::List(l) if Rc::strong_count(l) == 1 => work.append(&mut l.borrow_mut()),
        Value::Dict(d) if Rc::strong_count(d) == 1 => {
            for (k, v) in d.borrow_mut().drain(..) {
                work.push(k);
                work.push(v);
            }
        }
        _ => {}
    }
}

/// Reads a pickle (protocols 2 to 5, the subset above) and returns its value.
pub fn load(data: &[u8]) -> Result<Value, PickleError> {
    Machine {
        data,
        at: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    }
    .run()
}

struct Machine<'a> {
    data: &'a [u8],
    at: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
}

impl Machine<'_> {
    fn error(&self, message: impl Into<String>) -> PickleError {
        PickleError::Malformed {
            at: self.at,
            message: message.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| self.error(format!("the pickle ends inside a {n}-byte argument")))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn uint(&mut self, n: usize) -> Result<u64, PickleError> {
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(self.take(n)?);
        Ok(u64::from_le_bytes(b))
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.at..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.error("a GLOBAL name without its newline"))?;
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.at += end + 1;
        Ok(text)
    }

    fn text(&mut self, n: usize) -> Result<Value, PickleError> {
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec())
            .map(Value::Str)
            .map_err(|_| self.error("a string that is not UTF-8"))
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        self.stack.pop().ok_or_else(|| self.error("the stack is empty"))
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        let at = self.at;
        self.stack.last_mut().ok_or(PickleError::Malformed {
            at,
            message: "the stack is empty".into(),
        })
    }

    /// The values pushed since the last MARK.
    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let mark = self.marks.pop().ok_or_else(|| self.error("no MARK to pop to"))?;
        if mark > self.stack.len() {
            return Err(self.error("a MARK above the stack"));
        }
        Ok(self.stack.split_off(mark))
    }

    fn push_tuple(&mut self, n: usize) -> Result<(), PickleError> {
        if self.stack.len() < n {
            return Err(self.error(format!("a {n}-tuple from a shorter stack")));
        }
        let items = self.stack.split_off(self.stack.len() - n);
        self.stack.push(Value::Tuple(Rc::new(items)));
        Ok(())
    }

    fn extend_list(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        match self.top()? {
            Value::List(l) => {
                l.borrow_mut().extend(items);
                Ok(())
            }
            other => {
                let found = other.type_name();
                Err(self.error(format!("APPEND to a {found}")))
            }
        }
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.error("SETITEMS with an odd number of values"));
        }
        match self.top()? {
            Value::Dict(d) => {
                let mut d = d.borrow_mut();
                let mut items = items.into_iter();
                while let (Some(k), Some(v)) = (items.next(), items.next()) {
                    d.push((k, v));
                }
                Ok(())
            }
            other => {
                let found = other.type_name();
                Err(self.error(format!("SETITEM on a {found}")))
            }
        }
    }

    fn memo_get(&mut self, key: u64) -> Result<(), PickleError> {
        let v = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| self.error(format!("memo entry {key} was never stored")))?;
        self.stack.push(v);
        Ok(())
    }

    fn memo_put(&mut self, key: u64) -> Result<(), PickleError> {
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            let op = self.take(1)?[0];
            match op {
                0x80 => {
                    let protocol = self.take(1)?[0];
                    if !(2..=5).contains(&protocol) {
                        return Err(self.error(format!("pickle protocol {protocol}; expected 2 to 5")));
                    }
                }
                0x95 => {
                    self.uint(8)?; // FRAME: a length hint
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'}' => self.stack.push(Value::dict()),
                b']' => self.stack.push(Value::List(Rc::default())),
                b')' => self.stack.push(Value::Tuple(Rc::default())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                0x85..=0x87 => self.push_tuple((op - 0x84) as usize)?,
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(Rc::new(RefCell::new(items))));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::dict());
                    self.set_items(items)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend_list(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_list(items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b'N' => self.stack.push(Value::None),
                0x88 | 0x89 => self.stack.push(Value::Bool),
                b'J' => {
                    let v = self.uint(4)? as u32 as i32;
                    self.stack.push(Value::Int(v.into()));
                }
                b'K' => {
                    let v = self.uint(1)?;
                    self.stack.push(Value::Int(v as i64));
                }
                b'M' => {
                    let v = self.uint(2)?;
                    self.stack.push(Value::Int(v as i64));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a { self.uint(1)? } else { self.uint(4)? } as usize;
                    let bytes = self.take(n)?;
                    let v = if n <= 8 {
                        // Two's complement, little-endian, sign-extended from the last byte.
                        let fill = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
                            0xff
                        } else {
                            0
                        };
                        let mut b = [fill; 8];
                        b[..n].copy_from_slice(bytes);
                        Value::Int(i64::from_le_bytes(b))
                    } else {
                        Value::BigInt
                    };
                    self.stack.push(v);
                }
                b'G' => {
                    self.take(8)?;
                    self.stack.push(Value::Float);
                }
                b'X' | 0x8c | 0x8d | b'T' | b'U' => {
                    let n = match op {
                        0x8c | b'U' => self.uint(1)?,
                        0x8d => self.uint(8)?,
                        _ => self.uint(4)?,
                    } as usize;
                    let v = self.text(n)?;
                    self.stack.push(v);
                }
                b'B' | b'C' | 0x8e => {
                    let n = match op {
                        b'C' => self.uint(1)?,
                        0x8e => self.uint(8)?,
                        _ => self.uint(4)?,
                    } as usize;
                    self.take(n)?;
                    self.stack.push(Value::Bytes);
                }
                b'q' => {
                    let key = self.uint(1)?;
                    self.memo_put(key)?;
                }
                b'r' => {
                    let key = self.uint(4)?;
                    self.memo_put(key)?;
                }
                0x94 => self.memo_put(self.memo.len() as u64)?,
                b'h' => {
                    let key = self.uint(1)?;
                    self.memo_get(key)?;
                }
                b'j' => {
                    let key = self.uint(4)?;
                    self.memo_get(key)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(Global::resolve(&module, &name)?));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (&module, &name) {
                        (Value::Str(m), Value::Str(n)) => {
                            let global = Global::resolve(m, n)?;
                            self.stack.push(Value::Global(global));
                        }
                        _ => return Err(self.error("STACK_GLOBAL without two strings")),
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(callable, args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    // BUILD sets an object's attributes; on a dict that is the `_metadata`
                    // an nn.Module state dict carries, which loading does not need.
                    self.pop()?;
                    if !matches!(self.top()?, Value::Dict(_)) {
                        return Err(self.error("BUILD on something other than a dict"));
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.storage(pid)?;
                    self.stack.push(v);
                }
                other => {
                    return Err(self.error(format!(
                        "opcode {:?} (0x{other:02x}) is not one a state dict uses",
                        other as char
                    )))
                }
            }
        }
    }

    /// Applies one of the allowed globals to its arguments.
    fn reduce(&self, callable: Value, args: Value) -> Result<Value, PickleError> {
        let Value::Global(global) = callable else {
            return Err(self.error(format!("REDUCE calls a {}", callable.type_name())));
        };
        let Value::Tuple(args) = &args else {
            return Err(self.error("REDUCE arguments are not a tuple"));
        };
        match (global, args.as_slice()) {
            (Global::OrderedDict, []) => Ok(Value::dict()),
            (Global::RebuildTensor, [Value::Storage(storage), Value::Int(offset), size, stride, ..]) => {
                Ok(Value::Tensor(Rc::new(TensorRef {
                    storage: storage.clone(),
                    offset: *offset,
                    size: self.ints(size, "size")?,
                    stride: self.ints(stride, "stride")?,
                })))
            }
            (Global::RebuildParameter, [tensor @ Value::Tensor(_), ..]) => Ok(tensor.clone()),
            (global, args) => Err(self.error(format!(
                "{global:?} called with ({})",
                args.iter().map(Value::type_name).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    fn ints(&self, v: &Value, what: &str) -> Result<Vec<i64>, PickleError> {
        match v {
            Value::Tuple(items) => items
                .iter()
                .map(|i| match i {
                    Value::Int(i) => Ok(*i),
                    other => Err(self.error(format!("a tensor {what} holding a {}", other.type_name()))),
                })
                .collect(),
            other => Err(self.error(format!("a tensor {what} that is a {}", other.type_name()))),
        }
    }

    /// A persistent id: `('storage', torch.<Kind>Storage, key, location, numel)`.
    fn storage(&self, pid: Value) -> Result<Value, PickleError> {
        if let Value::Tuple(t) = &pid {
            if let [Value::Str(tag), Value::Global(Global::Storage(kind)), Value::Str(key), _, Value::Int(numel)] =
                t.as_slice()
            {
                if tag == "storage" {
                    return Ok(Value::Storage(Rc::new(StorageRef {
                        key: key.clone(),
                        kind: *kind,
                        numel: *numel,
                    })));
                }
            }
        }
        Err(self.error(format!(
            "a persistent id that is not a torch storage (a {})",
            pid.type_name()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deeply_nested_pickle_is_dropped_without_recursion() {
        const DEPTH: usize = 1_000_000;
        let mut data = b"\x80\x02".to_vec();
        data.extend(std::iter::repeat_n(b']', DEPTH));
        data.extend(std::iter::repeat_n(b'a', DEPTH - 1));
        data.push(b'.');
        assert!(matches!(load(&data), Ok(Value::List(_))));
    }

    #[test]
    fn a_memoised_dict_filled_later_is_the_same_object() {
        // {'a': d, 'b': d} with d = {'x': None}, d memoised before it is filled (protocol 4).
        let data = b"\x80\x04}\x94(\x8c\x01a\x94}\x94\x8c\x01x\x94Ns\x8c\x01b\x94h\x02u.";
        let root = load(data).unwrap();
        let Value::Dict(top) = &root else { panic!("a dict") };
        let top = top.borrow();
        match (&top[0].1, &top[1].1) {
            (Value::Dict(a), Value::Dict(b)) => assert!(Rc::ptr_eq(a, b) && a.borrow().len() == 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_foreign_global_is_refused_by_name_whatever_the_opcode() {
        for data in [
            &b"\x80\x02cbuiltins\neval\n)R."[..],
            &b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93)R."[..],
        ] {
            let err = load(data).unwrap_err().to_string();
            assert!(
                err.contains("`builtins.eval`") && err.contains("refusing"),
                "{err}"
            );
        }
    }
}
