//! Dataset contracts from TOML. Nothing may panic; a contract that validates keeps its
//! rules (identifiers, no reserved names, a date partition column, required keys), and
//! written back as TOML it reads as the same contract.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snowcast::domain::{
    contract::{ColumnType, Contract, Granularity},
    keys::RESERVED_COLUMNS,
    naming,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(contract) = Contract::from_toml(text) else {
        return;
    };
    let Ok(contract) = contract.validated() else {
        return;
    };
    for column in &contract.columns {
        assert!(naming::is_identifier(&column.name));
        assert!(!RESERVED_COLUMNS.contains(&column.name.as_str()));
        let shown = column.column_type.to_string();
        assert_eq!(shown.parse::<ColumnType>(), Ok(column.column_type));
    }
    for key in &contract.primary_key {
        assert!(!contract.column(key).expect("a key is a column").nullable);
    }
    if let Some(partition) = contract.partitioning() {
        let column = contract.column(&partition.column).expect("a partition column");
        assert!(partition.granularity != Granularity::None);
        assert!(matches!(
            column.column_type,
            ColumnType::Date | ColumnType::Timestamp
        ));
    }
    let written = toml::to_string(&contract).expect("a contract writes as TOML");
    let read = Contract::from_toml(&written)
        .expect("what was written reads")
        .validated()
        .expect("and validates");
    assert_eq!(read, contract);
});
