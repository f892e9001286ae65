//! A kernel vector's full observation as text, for its insta snapshot.

use super::*;

impl KernelVector {
    /// The full observation of a run: every P1 and P2 record and each leg's result.
    pub fn render(&self, run: &RunRecord) -> String {
        let mut posts = BTreeMap::new();
        for (i, leg) in run.legs.iter().enumerate() {
            if let Ok(CallResult::Halt { post_instance_hash: p, .. }) = leg.result {
                posts.entry(p).or_insert_with(|| format!("post@leg{i}"));
                let cn =
                    run.cache.get_blob(&p).and_then(Cap::as_instance).and_then(|x| x.root_cnode.as_hash().copied());
                if let Some(cn) = cn {
                    posts.entry(cn).or_insert_with(|| format!("post_cnode@leg{i}"));
                }
            }
        }
        let name = |h: &Hash| self.name_of(h).or_else(|| posts.get(h).cloned());
        let mut s = String::new();
        let _ = writeln!(s, "# {}", self.name);
        if !self.description.is_empty() {
            let _ = writeln!(s, "# {}", self.description);
        }
        let _ = writeln!(s, "# names:");
        for (h, n) in self.names.iter().chain(posts.iter().filter(|(h, _)| !self.names.contains_key(*h))) {
            let _ = writeln!(s, "#   {n} = {}", to_hex(h));
        }
        for (i, leg) in run.legs.iter().enumerate() {
            let _ = writeln!(s, "\n== leg {i}: {}", self.legs_text[i]);
            for r in run.records.iter().filter(|r| r.leg == i) {
                match (&r.ecall, r.kobs.point) {
                    (Some(e), _) => {
                        let err = e.error.as_ref().map_or(String::new(), |x| format!(" error {x:?}"));
                        let _ = writeln!(
                            s,
                            "-- P1 ecall #{} {} ({}) at pc {}{err} digest {}",
                            e.index,
                            e.op,
                            op::name(e.op),
                            e.pc,
                            to_hex(&r.kobs.digest())
                        );
                    }
                    (None, _) => {
                        let _ = writeln!(s, "-- P2 digest {}", to_hex(&r.kobs.digest()));
                    }
                }
                s.push_str(&r.kobs.render(&name));
            }
            let shown = match &leg.result {
                Ok(r) => show_outcome(&ObsOutcome::Leg(*r), &name),
                Err(e) => format!("error {e:?} ({e})"),
            };
            let _ = writeln!(s, "-- result: {shown}");
            if let Some(e) = &leg.last_error {
                let _ = writeln!(s, "-- last error: {e:?}");
            }
        }
        s
    }
}
