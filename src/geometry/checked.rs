//! [`Checked`]: options that passed their range checks once, where they entered (the
//! configuration, a tracker's setter), so the per-frame code that takes them checks nothing.

use std::ops::Deref;

use super::GeometryError;

/// Options with range checks.
pub trait Validate {
    /// Check every field; the error names the first bad one.
    fn validate(&self) -> Result<(), GeometryError>;
}

/// `T` after [`Validate::validate`] accepted it; only [`Checked::new`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked<T>(T);

impl<T: Validate> Checked<T> {
    /// Check `options` once.
    pub fn new(options: T) -> Result<Self, GeometryError> {
        options.validate()?;
        Ok(Checked(options))
    }
}

impl<T: Validate + Default> Default for Checked<T> {
    /// The defaults, which are valid (each options type's tests check it).
    fn default() -> Self {
        Checked(T::default())
    }
}

impl<T> Deref for Checked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Checked<T> {
    /// The options.
    pub fn get(&self) -> &T {
        &self.0
    }
}
