//! What `wgdp setup` needs to know from the EAL arguments without starting
//! EAL: how much hugepage memory the process will ask for (which CPU each
//! lcore runs on is `conf::eal`'s, as validation needs it too).

use conf::eal::option;

/// How EAL will use hugepages, from its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HugeUse {
    /// `--no-huge`: anonymous memory, no hugepages.
    None,
    /// `-m MB`: this many MiB, reserved up front, on any node.
    Fixed(u64),
    /// `--socket-mem a,b,...`: entry `i` MiB reserved up front on NUMA
    /// node `i`.
    PerNode(Vec<u64>),
    /// Neither: EAL grows its heap on demand; the caller estimates.
    Dynamic,
}

/// Reads `--no-huge`, `-m` and `--socket-mem`.
pub fn huge_use(args: &[String]) -> Result<HugeUse, String> {
    if args.iter().any(|a| a == "--no-huge") {
        return Ok(HugeUse::None);
    }
    if let Some(v) = option(args, "--socket-mem") {
        let per_node = v
            .split(',')
            .map(|part| part.trim().parse::<u64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format!("--socket-mem {v:?}: not a list of MiB"))?;
        return Ok(HugeUse::PerNode(per_node));
    }
    if let Some(v) = option(args, "-m") {
        let mb = v
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("-m {v:?}: not a number of MiB"))?;
        return Ok(HugeUse::Fixed(mb));
    }
    Ok(HugeUse::Dynamic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn memory_options_are_read() {
        assert_eq!(huge_use(&args("-l 0 --no-huge")).unwrap(), HugeUse::None);
        assert_eq!(huge_use(&args("-m 512")).unwrap(), HugeUse::Fixed(512));
        assert_eq!(
            huge_use(&args("--socket-mem=1024,2048")).unwrap(),
            HugeUse::PerNode(vec![1024, 2048])
        );
        assert!(huge_use(&args("--socket-mem=1024,x")).is_err());
        assert_eq!(huge_use(&args("-l 0-2")).unwrap(), HugeUse::Dynamic);
        assert!(huge_use(&args("-m lots")).is_err());
    }
}
