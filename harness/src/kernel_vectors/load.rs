//! Loading a kernel vector: every name resolved (with a nesting limit), every image
//! assembled, every expectation checked for shape; any problem is an error naming the place.

use super::*;

/// Resolves names while a file is loaded.
pub(super) struct Loader<'a> {
    pub(super) caps: &'a BTreeMap<String, CapDef>,
    pub(super) opaque: &'a BTreeMap<String, String>,
    pub(super) catchers: BTreeMap<String, Hash>,
    pub(super) built: BTreeMap<String, Hash>,
    pub(super) building: BTreeSet<String>,
    pub(super) cache: CacheDirectory,
    pub(super) names: BTreeMap<Hash, String>,
    /// How deep references nest right now (`pair:` inside `pair:`, caps naming caps).
    pub(super) depth: usize,
}

/// An error message cut to a readable length (references can be arbitrarily long).
pub(super) fn clip(message: &str) -> String {
    pub(super) const MAX: usize = 300;
    match message.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}… ({} more bytes)", &message[..i], message.len() - i),
        None => message.to_string(),
    }
}

/// How deep references may nest in a kernel vector.
pub(super) const MAX_NESTING: usize = 64;

pub(super) fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// `#XX` (one byte repeated) or `#` followed by 64 hex digits.
pub(super) fn hash_literal(s: &str) -> Option<Hash> {
    let hex = s.strip_prefix('#')?;
    let bytes = parse_hex(hex)?;
    match bytes.len() {
        1 => Some([bytes[0]; 32]),
        32 => bytes.try_into().ok(),
        _ => None,
    }
}

pub(super) fn number<T: std::str::FromStr>(key: &str, at: &str) -> Result<T, String> {
    key.parse().map_err(|_| format!("{at}: `{key}` is not a number"))
}

pub(super) fn data_bytes(v: &Value, at: &str) -> Result<Vec<u8>, String> {
    let bad =
        || format!("{at}: data is a string, or an object with one of `text`, `hex`, `bytes` and an optional `pages`");
    let (bytes, pages) = match v {
        Value::String(s) => (s.as_bytes().to_vec(), 1),
        Value::Object(o) => {
            for k in o.keys() {
                if !["text", "hex", "bytes", "pages"].contains(&k.as_str()) {
                    return Err(format!("{at}: unknown data field `{k}`"));
                }
            }
            let bytes = match (o.get("text"), o.get("hex"), o.get("bytes")) {
                (Some(Value::String(t)), None, None) => t.as_bytes().to_vec(),
                (None, Some(Value::String(h)), None) => {
                    parse_hex(h).ok_or_else(|| format!("{at}: `{h}` is not an even number of hex digits"))?
                }
                (None, None, Some(Value::Array(a))) => a
                    .iter()
                    .map(|x| x.as_u64().and_then(|b| u8::try_from(b).ok()))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(|| format!("{at}: `bytes` must be numbers 0..=255"))?,
                (None, None, None) => Vec::new(),
                _ => return Err(bad()),
            };
            let pages = match o.get("pages") {
                None => 1,
                Some(p) => {
                    p.as_u64().filter(|&p| p <= 1 << 10).ok_or_else(|| format!("{at}: `pages` must be 0..=1024"))?
                }
            };
            (bytes, pages)
        }
        _ => return Err(bad()),
    };
    let len = bytes.len().div_ceil(4096).max(pages as usize).max(1) * 4096;
    let mut content = bytes;
    content.resize(len, 0);
    Ok(content)
}

pub(super) fn regs_map(m: &BTreeMap<String, u64>, at: &str) -> Result<[u64; 13], String> {
    let mut regs = [0u64; 13];
    for (k, v) in m {
        let i: usize = number(k, at)?;
        if i >= 13 {
            return Err(format!("{at}: register {i} is not 0..=12"));
        }
        regs[i] = *v;
    }
    Ok(regs)
}

/// An image's code as the assembler sees it.
pub(super) fn code_text(c: &CodeDef) -> String {
    match c {
        CodeDef::Text(t) => t.clone(),
        CodeDef::Lines(lines) => lines.join("\n"),
    }
}

/// An image with the code, packed bitmask and jump table of `text` assembled for profile J,
/// and otherwise empty.
pub fn image_from_asm(text: &str) -> Result<ImageCap, String> {
    let blob = asm::assemble(text, Profile::J).map_err(|e| e.to_string())?;
    let bitmask = blob.starts.packed(blob.code.len());
    Ok(ImageCap { jump_table: blob.jump_table, ..ImageCap::with_code(blob.code, bitmask) })
}

impl Loader<'_> {
    /// Runs `f` one nesting level deeper, refusing to go past [`MAX_NESTING`].
    pub(super) fn nested<T>(&mut self, at: &str, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        if self.depth >= MAX_NESTING {
            return Err(format!("{at}: references nest deeper than {MAX_NESTING} levels"));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    pub(super) fn resolve(&mut self, name: &str, at: &str) -> Result<Hash, String> {
        self.nested(at, |l| l.resolve_here(name, at)).map_err(|e| clip(&e))
    }

    pub(super) fn resolve_here(&mut self, name: &str, at: &str) -> Result<Hash, String> {
        if name.starts_with('#') {
            return hash_literal(name)
                .ok_or_else(|| format!("{at}: `{name}` is not a hash literal (`#` and 2 or 64 hex digits)"));
        }
        if name == "OOG" {
            return Ok(OOG_MARKER);
        }
        if let Some(pair) = name.strip_prefix("pair:") {
            let Some((a, b)) = pair.split_once(',') else {
                return Err(format!("{at}: `{name}` should be `pair:A,B`"));
            };
            let (a, b) = (self.resolve(a.trim(), at)?, self.resolve(b.trim(), at)?);
            return Ok(javm_cap::hash_pair(&a, &b));
        }
        if let Some(h) = self.catchers.get(name) {
            return Ok(*h);
        }
        if let Some(lit) = self.opaque.get(name) {
            let h = hash_literal(lit).ok_or_else(|| format!("opaque.{name}: `{lit}` is not a hash literal"))?;
            self.names.entry(h).or_insert_with(|| name.to_string());
            return Ok(h);
        }
        if self.caps.contains_key(name) {
            return self.build(name);
        }
        Err(format!("{at}: dangling reference `{name}` (not a cap, opaque hash, catcher, `OOG` or `#` literal)"))
    }

    pub(super) fn build(&mut self, name: &str) -> Result<Hash, String> {
        self.nested(&format!("caps.{name}"), |l| l.build_here(name))
    }

    pub(super) fn build_here(&mut self, name: &str) -> Result<Hash, String> {
        if let Some(h) = self.built.get(name) {
            return Ok(*h);
        }
        if !self.building.insert(name.to_string()) {
            return Err(format!("caps.{name}: refers to itself"));
        }
        let caps = self.caps;
        let def = &caps[name];
        let at = format!("caps.{name}");
        let kinds =
            [def.data.is_some(), def.cnode.is_some(), def.image.is_some(), def.instance.is_some(), def.type_.is_some()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(format!("{at}: needs exactly one of `data`, `cnode`, `image`, `instance`, `type`"));
        }
        let cap = if let Some(d) = &def.data {
            Cap::Data(DataCap { content: data_bytes(d, &format!("{at}.data"))? })
        } else if let Some(c) = &def.cnode {
            let mut cn = CNodeCap { size_log: c.size_log, slots: Default::default() };
            for (k, v) in &c.slots {
                let slot_at = format!("{at}.cnode.slots.{k}");
                let s: u32 = number(k, &slot_at)?;
                let h = self.resolve(v, &slot_at)?;
                cn.slots.insert(s, CapHashOrRef::Hash(h));
            }
            Cap::CNode(cn)
        } else if let Some(i) = &def.image {
            Cap::Image(self.image(i, &format!("{at}.image"))?)
        } else if let Some(i) = &def.instance {
            let iat = format!("{at}.instance");
            let image_hash = self.resolve(&i.image, &format!("{iat}.image"))?;
            let root = self.resolve(&i.cnode, &format!("{iat}.cnode"))?;
            let chain = match &i.chain {
                None => [0; 32],
                Some(c) => self.resolve(c, &format!("{iat}.chain"))?,
            };
            let mut overlays = Vec::new();
            for (k, o) in i.overlays.iter().enumerate() {
                overlays
                    .push(RwOverlay { start: o.start, bytes: data_bytes(&o.data, &format!("{iat}.overlays[{k}]"))? });
            }
            Cap::Instance(InstanceCap {
                image_hash_chain: chain,
                image_hash,
                root_cnode: CapHashOrRef::Hash(root),
                rw_overlays: overlays,
                mem_size: i.mem_size,
                regs: regs_map(&i.regs, &format!("{iat}.regs"))?,
                pc: i.pc,
                gas_remaining: i.gas,
            })
        } else if let Some(t) = &def.type_ {
            Cap::Type(TypeCap { image_hash_chain: self.resolve(&t.chain, &format!("{at}.type.chain"))? })
        } else {
            unreachable!("one kind is set")
        };
        let h = if def.publish {
            self.cache.put(cap).map_err(|e| format!("{at}: rejected by the cache: {e}"))?
        } else {
            javm_cap::cap_hash(&cap).map_err(|e| format!("{at}: cannot be hashed: {e}"))?
        };
        self.building.remove(name);
        self.built.insert(name.to_string(), h);
        self.names.insert(h, name.to_string());
        Ok(h)
    }

    pub(super) fn image(&mut self, i: &ImageDef, at: &str) -> Result<ImageCap, String> {
        let base = image_from_asm(&code_text(&i.code)).map_err(|e| format!("{at}.code: {e}"))?;
        let mut endpoints = vec![EndpointDef::default(); 64];
        for (k, e) in &i.endpoints {
            let eat = format!("{at}.endpoints.{k}");
            let n: usize = number(k, &eat)?;
            if n >= 64 {
                return Err(format!("{eat}: endpoint {n} is not 0..=63"));
            }
            endpoints[n] = EndpointDef {
                entry_pc: e.entry_pc,
                stack_top: e.stack_top,
                arg_cnode_slot: e.arg_cnode_slot,
                arg_cnode_size: e.arg_cnode_size,
                initial_regs: regs_map(&e.regs, &format!("{eat}.regs"))?,
            };
        }
        let mappings = i
            .mappings
            .iter()
            .map(|m| MemoryMapping {
                start: m.start,
                size: m.size,
                source_path: m.path.iter().map(|&s| SlotIdx(s)).collect(),
            })
            .collect();
        let mut entries = |m: &BTreeMap<String, String>, what: &str| -> Result<Vec<ImageSlotEntry>, String> {
            let mut v = Vec::new();
            for (k, t) in m {
                let eat = format!("{at}.{what}.{k}");
                let slot: u32 = number(k, &eat)?;
                v.push(ImageSlotEntry { slot: SlotIdx(slot), cap_hash: self.resolve(t, &eat)? });
            }
            v.sort_by_key(|e| e.slot);
            Ok(v)
        };
        let pinned = entries(&i.pinned, "pinned")?;
        let initial = entries(&i.initial, "initial")?;
        Ok(ImageCap {
            code: base.code,
            bitmask: base.bitmask,
            jump_table: base.jump_table,
            endpoints,
            mappings,
            pinned,
            initial,
            yield_marker_slot: i.yield_slot.map(SlotIdx),
        })
    }

    pub(super) fn exp_ref(&mut self, name: &str, at: &str) -> Result<ExpRef, String> {
        match name {
            "@post" => Ok(ExpRef::Post),
            "@post_cnode" => Ok(ExpRef::PostCnode),
            _ => self.resolve(name, at).map(ExpRef::Hash),
        }
    }

    pub(super) fn opt_ref(&mut self, v: &Option<Option<String>>, at: &str) -> Result<Option<Option<ExpRef>>, String> {
        match v {
            None => Ok(None),
            Some(None) => Ok(Some(None)),
            Some(Some(n)) => Ok(Some(Some(self.exp_ref(n, at)?))),
        }
    }
}

pub(super) const RESULTS: [&str; 7] = ["halt", "trap", "panic", "out-of-gas", "page-fault", "paused", "error"];

/// Reads one kernel vector.
pub fn load_kernel_vector(path: &Path) -> Result<KernelVector, VectorError> {
    let err = |message: String| VectorError { path: path.to_path_buf(), message };
    let text = crate::input::read_text(path).map_err(err)?;
    parse_kernel_vector(&text, path).map_err(err)
}

/// Parses a kernel vector from its text; `path` only names it.
pub fn parse_kernel_vector(text: &str, path: &Path) -> Result<KernelVector, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    let file: FileDef = serde_json::from_value(value).map_err(|e| format!("kernel vector: {e}"))?;
    if file.kernel != FORMAT_VERSION {
        return Err(format!("kernel vector format {} is not supported (only {FORMAT_VERSION})", file.kernel));
    }
    if file.legs.is_empty() {
        return Err("kernel vector has no legs".into());
    }
    let mut assist = InMemoryAssist::new();
    let mut catchers = BTreeMap::new();
    let mut names = BTreeMap::new();
    for name in file.assist.catchers.keys() {
        let h = assist.yield_catcher_new();
        catchers.insert(name.clone(), h);
        names.insert(h, name.clone());
    }
    names.insert(OOG_MARKER, "OOG".to_string());
    let mut l = Loader {
        caps: &file.caps,
        opaque: &file.opaque,
        catchers,
        built: BTreeMap::new(),
        building: BTreeSet::new(),
        cache: CacheDirectory::new(),
        names,
        depth: 0,
    };
    for name in file.caps.keys() {
        l.build(name)?;
    }
    for (name, markers) in &file.assist.catchers {
        let c = l.catchers[name];
        for m in markers {
            let h = l.resolve(m, &format!("assist.catchers.{name}"))?;
            assist.yield_catcher_add(c, h);
        }
    }
    for (id, v) in &file.assist.quotas {
        assist.storage_quota_set(number(id, "assist.quotas")?, *v);
    }
    for (id, t) in &file.assist.files {
        let at = format!("assist.files.{id}");
        let h = l.resolve(t, &at)?;
        assist.register_file(number(id, &at)?, CapHashOrRef::Hash(h));
    }
    let gas = match file.gas_model.as_deref() {
        None | Some("block-unit") => GasModel::BlockUnit,
        Some("instruction") => GasModel::Instruction,
        Some(g) => return Err(format!("gas_model `{g}` is not block-unit or instruction")),
    };

    let mut legs = Vec::new();
    let mut expects = Vec::new();
    let mut legs_text = Vec::new();
    for (i, leg) in file.legs.iter().enumerate() {
        let at = format!("legs[{i}]");
        match (&leg.invoke, &leg.resume) {
            (Some(inv), None) => {
                let instance = l.resolve(&inv.instance, &format!("{at}.invoke.instance"))?;
                legs.push(Leg::Invoke { instance, endpoint: inv.endpoint, args: inv.args, gas: inv.gas });
                legs_text.push(format!(
                    "invoke {} endpoint {} args {:?} gas {}",
                    inv.instance, inv.endpoint, inv.args, inv.gas
                ));
            }
            (None, Some(res)) => {
                let scratchpad = match &res.scratchpad {
                    None => None,
                    Some(s) => Some(CapHashOrRef::Hash(l.resolve(s, &format!("{at}.resume.scratchpad"))?)),
                };
                legs.push(Leg::Resume { scratchpad, extra_gas: res.extra_gas });
                legs_text.push(format!(
                    "resume scratchpad {} extra_gas {}",
                    res.scratchpad.as_deref().unwrap_or("none"),
                    res.extra_gas
                ));
            }
            _ => return Err(format!("{at}: a leg needs exactly one of `invoke` or `resume`")),
        }
        expects.push(expectation(&mut l, &leg.expect, &format!("{at}.expect"))?);
    }
    let max_depth = file.max_depth.unwrap_or(javm_kernel::DEFAULT_MAX_DEPTH);
    let Loader { cache, names, .. } = l;
    Ok(KernelVector {
        name: file.name,
        description: file.description,
        path: path.to_path_buf(),
        scenario: Scenario { cache, assist, config: Config::new(Profile::J, gas), max_depth, legs },
        expects,
        names,
        legs_text,
    })
}

pub(super) fn expectation(l: &mut Loader<'_>, e: &ExpectDef, at: &str) -> Result<LegExpect, String> {
    if let Some(r) = &e.result {
        if !RESULTS.contains(&r.as_str()) {
            return Err(format!("{at}.result: `{r}` is not one of {}", RESULTS.join(", ")));
        }
    }
    let mut regs = BTreeMap::new();
    for (k, v) in &e.regs {
        let i: usize = number(k, &format!("{at}.regs"))?;
        if i >= 13 {
            return Err(format!("{at}.regs: register {i} is not 0..=12"));
        }
        regs.insert(i, *v);
    }
    let slots = match &e.slots {
        None => None,
        Some(m) => {
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let sat = format!("{at}.slots.{k}");
                out.insert(number(k, &sat)?, l.exp_ref(v, &sat)?);
            }
            Some(out)
        }
    };
    let (published_count, published_include) = match &e.published {
        None => (None, Vec::new()),
        Some(p) => {
            let mut inc = Vec::new();
            for n in &p.include {
                inc.push(l.exp_ref(n, &format!("{at}.published.include"))?);
            }
            (p.count, inc)
        }
    };
    let (quotas, files, next_file_id) = match &e.assist {
        None => (None, None, None),
        Some(a) => {
            let quotas = match &a.quotas {
                None => None,
                Some(q) => {
                    Some(q.iter().map(|(k, v)| Ok((number(k, &format!("{at}.assist.quotas"))?, *v))).collect::<Result<
                        BTreeMap<u64, u64>,
                        String,
                    >>(
                    )?)
                }
            };
            let files = match &a.files {
                None => None,
                Some(f) => {
                    let mut out = BTreeMap::new();
                    for (k, v) in f {
                        let fat = format!("{at}.assist.files.{k}");
                        out.insert(number(k, &fat)?, l.exp_ref(v, &fat)?);
                    }
                    Some(out)
                }
            };
            (quotas, files, a.next_file_id)
        }
    };
    Ok(LegExpect {
        result: e.result.clone(),
        return_value: e.return_value,
        reflected: l.opt_ref(&e.reflected, &format!("{at}.reflected"))?,
        payload: l.opt_ref(&e.payload, &format!("{at}.payload"))?,
        gas_used: e.gas_used,
        fault_address: e.fault_address,
        error: e.error.clone(),
        last_error: e.last_error.clone(),
        ecalls: e.ecalls.clone(),
        regs,
        pc: e.pc,
        gas: e.gas,
        slots,
        stack_len: e.stack_len,
        published_count,
        published_include,
        quotas,
        files,
        next_file_id,
    })
}

/// The JSON files below `path` that are kernel vectors (or `path` itself).
pub fn collect_kernel_vectors(path: &Path) -> Result<Vec<PathBuf>, VectorError> {
    let files = crate::vectors::collect_files(path)?;
    Ok(files.into_iter().filter(|f| is_kernel_vector(f)).collect())
}
