//! `demo-host list`: the plugins on the search path.

use super::table;
use crate::plugin::locate::Found;

pub fn render(found: &[Found]) -> String {
    if found.is_empty() {
        return format!(
            "no plugins found in ./plugins, ${} or beside the demo-host binary",
            crate::plugin::locate::PATH_VAR
        );
    }
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                f.location.display().to_string(),
                match (&f.library, &f.build_command) {
                    (Some(lib), _) => format!("built: {}", lib.display()),
                    (None, Some(cmd)) => format!("not built: {cmd}"),
                    (None, None) => "-".into(),
                },
            ]
        })
        .collect();
    table::render(&["name", "location", "library"], &rows)
}
