use crate::dataset::DatasetFactory;
use crate::guard::Guarded;
use crate::loss::LossFactory;
use crate::masking::MaskingFactory;

/// The three kinds of component a plugin can provide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComponentKind {
    Dataset,
    Masking,
    Loss,
}

impl ComponentKind {
    pub const ALL: [ComponentKind; 3] = [Self::Dataset, Self::Masking, Self::Loss];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dataset => "dataset",
            Self::Masking => "masking",
            Self::Loss => "loss",
        }
    }
}

impl std::fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A registered factory, already wrapped so that its panics stay inside the plugin.
pub enum Component {
    Dataset(Box<dyn DatasetFactory>),
    Masking(Box<dyn MaskingFactory>),
    Loss(Box<dyn LossFactory>),
}

impl Component {
    pub fn kind(&self) -> ComponentKind {
        match self {
            Self::Dataset(_) => ComponentKind::Dataset,
            Self::Masking(_) => ComponentKind::Masking,
            Self::Loss(_) => ComponentKind::Loss,
        }
    }
}

/// One named component and the package that registered it.
pub struct Registration {
    pub name: String,
    pub description: String,
    pub package: String,
    pub version: String,
    pub component: Component,
}

/// What a plugin's registration function fills in.
#[derive(Default)]
pub struct Registry {
    package: (String, String),
    entries: Vec<Registration>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Set by [`crate::declare_plugin!`] to the plugin crate's name and version.
    pub fn set_package(&mut self, name: &str, version: &str) {
        self.package = (name.to_string(), version.to_string());
    }

    pub fn dataset<F: DatasetFactory + 'static>(&mut self, name: &str, description: &str, f: F) {
        self.push(name, description, Component::Dataset(Box::new(Guarded(f))));
    }

    pub fn masking<F: MaskingFactory + 'static>(&mut self, name: &str, description: &str, f: F) {
        self.push(name, description, Component::Masking(Box::new(Guarded(f))));
    }

    pub fn loss<F: LossFactory + 'static>(&mut self, name: &str, description: &str, f: F) {
        self.push(name, description, Component::Loss(Box::new(Guarded(f))));
    }

    fn push(&mut self, name: &str, description: &str, component: Component) {
        self.entries.push(Registration {
            name: name.to_string(),
            description: description.to_string(),
            package: self.package.0.clone(),
            version: self.package.1.clone(),
            component,
        });
    }

    /// Hands the registrations to the host.
    pub fn into_entries(self) -> Vec<Registration> {
        self.entries
    }
}
