//! The `network` resource: a capability handle naming which network a socket uses.

/// A handle to a network. Every handle from `instance-network` names the same default network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    pub(crate) id: NetworkId,
}

/// Identity of a network; `start-connect` must get the network `start-bind` got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkId(pub(crate) std::num::NonZeroU32);

impl NetworkId {
    /// The instance's default network.
    pub const DEFAULT: NetworkId = NetworkId(std::num::NonZeroU32::MIN);
}
