//! The identity hub on SQLite and PostgreSQL: profiles from every source,
//! the traps (GitHub noreply, obfuscated and `+tag` addresses, bots, two
//! people sharing a name), manual merges/splits/locks surviving
//! re-collection, the declarative file, and the actor on decisions.

use bdc_core::Actor;
use bdc_identity::hub::{
    actors_of, find_identity, get_identity, merge, people_count, set_locked, split, suggest,
};
use bdc_identity::{ProfileInput, Rules, SCHEMA, record_profiles, resolve};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};

async fn setup(kind: Kind) -> (TestDb, Storage) {
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default())
        .await
        .unwrap();
    storage.migrate_parts(&[&SCHEMA]).await.unwrap();
    (
        db,
        storage.with_actor(&Actor::job("identities-test", "run-1")),
    )
}

/// Profiles as the GitHub, git and mailing-list collectors record them.
fn collected() -> Vec<ProfileInput> {
    vec![
        // GitHub account 583231 "octo"; a commit of it carried a work address.
        ProfileInput::new("github", "583231")
            .login(Some("Octo"))
            .name(Some("Octo Cat"))
            .email(Some("octo@work.example"))
            .acts_as("github", Some("Octo")),
        // git: the work address, and the GitHub noreply address.
        ProfileInput::new("git", "octo@work.example")
            .name(Some("Octo Cat"))
            .email(Some("octo@work.example"))
            .acts_as("git", Some("octo@work.example")),
        ProfileInput::new("git", "583231+octo@users.noreply.github.com")
            .name(Some("octo"))
            .email(Some("583231+Octo@users.noreply.github.com"))
            .acts_as("git", Some("583231+Octo@users.noreply.github.com")),
        // mailing list: obfuscated, and with a +tag and different case.
        ProfileInput::new("mailing-list", "octo at work.example")
            .name(Some("Octo C."))
            .email(Some("octo at work.example"))
            .acts_as("mailing-list", Some("octo at work.example")),
        ProfileInput::new("mailing-list", "Octo+boost@Work.Example")
            .email(Some("Octo+boost@Work.Example"))
            .acts_as("mailing-list", Some("Octo+boost@Work.Example")),
        // two different people sharing a name
        ProfileInput::new("git", "john@a.org")
            .name(Some("John Smith"))
            .email(Some("john@a.org")),
        ProfileInput::new("mailing-list", "john.smith@b.org")
            .name(Some("John Smith"))
            .email(Some("john.smith@b.org")),
        // bots
        ProfileInput::new("github", "49699333")
            .login(Some("dependabot[bot]"))
            .acts_as("github", Some("dependabot[bot]")),
        ProfileInput::new("git", "49699333+dependabot[bot]@users.noreply.github.com")
            .name(Some("dependabot[bot]"))
            .email(Some("49699333+dependabot[bot]@users.noreply.github.com")),
        ProfileInput::new("git", "noreply@github.com")
            .name(Some("GitHub"))
            .email(Some("noreply@github.com")),
        ProfileInput::new("git", "other-noreply")
            .name(Some("Someone"))
            .email(Some("noreply@github.com")),
        ProfileInput::new("mailing-list", "ci@boost.example")
            .name(Some("Boost-CI"))
            .email(Some("ci@boost.example")),
    ]
}

async fn record(storage: &Storage, profiles: &[ProfileInput]) {
    let mut tx = storage.begin().await.unwrap();
    record_profiles(&mut tx, profiles).await.unwrap();
    tx.commit().await.unwrap();
}

fn rules() -> Rules {
    Rules::parse("identities.yaml", "bots: [boost-ci]\n").unwrap()
}

async fn rules_and_traps(kind: Kind) {
    let (_db, s) = setup(kind).await;
    record(&s, &collected()).await;
    let c = resolve(&s, &rules()).await.unwrap();
    assert_eq!(c.profiles, 12);
    // octo (5 profiles), John A, John B, dependabot (2), GitHub noreply (2: the
    // shared noreply address is no merge key, so they stay apart -> 2), CI
    let octo = find_identity(&s, "octo").await.unwrap();
    let ident = get_identity(&s, octo).await.unwrap().unwrap();
    let mut refs: Vec<String> = ident.profiles.iter().map(|p| p.reference()).collect();
    refs.sort();
    assert_eq!(
        refs,
        vec![
            "git:583231+octo@users.noreply.github.com",
            "git:octo@work.example",
            "github:583231",
            "mailing-list:Octo+boost@Work.Example",
            "mailing-list:octo at work.example",
        ]
    );
    assert_eq!(ident.display_name.as_deref(), Some("Octo Cat"));
    assert!(!ident.is_bot);
    // by address (any spelling) and by source:id
    assert_eq!(
        find_identity(&s, "OCTO+x@work.example").await.unwrap(),
        octo
    );
    assert_eq!(find_identity(&s, "github:583231").await.unwrap(), octo);
    // names alone never merge
    let a = find_identity(&s, "john@a.org").await.unwrap();
    let b = find_identity(&s, "john.smith@b.org").await.unwrap();
    assert_ne!(a, b);
    let sugg = suggest(&s).await.unwrap();
    assert_eq!(
        sugg,
        vec![("john smith".to_owned(), {
            let mut v = vec![a, b];
            v.sort();
            v
        })]
    );
    // bots
    let dep = find_identity(&s, "dependabot[bot]").await.unwrap();
    let dep_i = get_identity(&s, dep).await.unwrap().unwrap();
    assert!(dep_i.is_bot);
    assert_eq!(dep_i.profiles.len(), 2);
    let ci = find_identity(&s, "ci@boost.example").await.unwrap();
    assert!(get_identity(&s, ci).await.unwrap().unwrap().is_bot);
    assert_eq!(c.identities, 7);
    assert_eq!(c.bots, 4);
    assert_eq!(people_count(&s).await.unwrap(), 3);
    // activity actors of the person
    let mut actors = actors_of(&s, octo).await.unwrap();
    actors.sort();
    assert_eq!(actors.len(), 5);
    assert!(actors.contains(&("github".to_owned(), "Octo".to_owned())));
    // idempotent: a second resolution changes nothing
    let again = resolve(&s, &rules()).await.unwrap();
    assert_eq!((again.reassigned, again.created, again.removed), (0, 0, 0));
}
bdc_testsupport::both_backends!(rules_and_traps);

async fn manual_decisions_survive(kind: Kind) {
    let (_db, s) = setup(kind).await;
    record(&s, &collected()).await;
    resolve(&s, &rules()).await.unwrap();
    let cli = s.with_actor(&Actor::cli_from_env());
    // merge the two John Smiths (a person confirmed it)
    let merged = merge(&cli, "john@a.org", "john.smith@b.org", &rules())
        .await
        .unwrap();
    assert_eq!(find_identity(&s, "john.smith@b.org").await.unwrap(), merged);
    // split the obfuscated mailing-list profile off octo
    let octo = find_identity(&s, "octo").await.unwrap();
    let alone = split(&cli, "mailing-list:octo at work.example", &rules())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(alone, octo);
    // re-collection: the same profiles again, plus a new address of octo
    let mut again = collected();
    again.push(
        ProfileInput::new("git", "octo@home.example")
            .name(Some("Octo Cat"))
            .email(Some("octo@home.example")),
    );
    again.push(ProfileInput::new("github", "583231").email(Some("octo@home.example")));
    record(&s, &again).await;
    resolve(&s, &rules()).await.unwrap();
    assert_eq!(find_identity(&s, "john@a.org").await.unwrap(), merged);
    assert_eq!(find_identity(&s, "john.smith@b.org").await.unwrap(), merged);
    assert_eq!(
        find_identity(&s, "mailing-list:octo at work.example")
            .await
            .unwrap(),
        alone
    );
    assert_eq!(find_identity(&s, "octo@home.example").await.unwrap(), octo);
    // decisions carry who made them
    let by: Vec<Option<String>> = bdc_storage::on_pool!(s, p => sqlx::query_scalar(
        "SELECT created_by FROM identity_decisions ORDER BY id"
    ).fetch_all(p).await.unwrap());
    assert_eq!(by.len(), 2);
    assert!(
        by.iter()
            .all(|b| b.as_deref().is_some_and(|b| b.contains("\"cli\""))),
        "{by:?}"
    );

    // lock octo: a new matching profile does not join it
    set_locked(&cli, octo, true).await.unwrap();
    record(
        &s,
        &[ProfileInput::new("mailing-list", "octo@work.example").email(Some("octo@work.example"))],
    )
    .await;
    resolve(&s, &rules()).await.unwrap();
    assert_ne!(
        find_identity(&s, "mailing-list:octo@work.example")
            .await
            .unwrap(),
        octo
    );
    assert_eq!(
        get_identity(&s, octo)
            .await
            .unwrap()
            .unwrap()
            .profiles
            .len(),
        5
    );
    assert!(matches!(
        merge(&cli, "octo", "john@a.org", &rules()).await,
        Err(bdc_identity::HubError::Locked(_))
    ));
}
bdc_testsupport::both_backends!(manual_decisions_survive);

async fn declarative_file(kind: Kind) {
    let (_db, s) = setup(kind).await;
    record(&s, &collected()).await;
    let r = Rules::parse(
        "identities.yaml",
        "merges:\n  - [\"git:john@a.org\", \"john.smith@b.org\"]\nsplits:\n  - \"mailing-list:Octo+boost@Work.Example\"\nbots: [\"John Smith\"]\nmerges_typo: 1\n",
    );
    assert!(r.is_err());
    let r = Rules::parse(
        "identities.yaml",
        "merges:\n  - [\"git:john@a.org\", \"john.smith@b.org\", \"nobody@x.org\"]\nsplits:\n  - \"mailing-list:Octo+boost@Work.Example\"\n",
    )
    .unwrap();
    let c = resolve(&s, &r).await.unwrap();
    assert_eq!(c.unresolved, 1);
    assert_eq!(
        find_identity(&s, "john@a.org").await.unwrap(),
        find_identity(&s, "john.smith@b.org").await.unwrap()
    );
    let octo = find_identity(&s, "github:583231").await.unwrap();
    assert_ne!(
        find_identity(&s, "mailing-list:Octo+boost@Work.Example")
            .await
            .unwrap(),
        octo
    );
    // applied on every run: a re-collection keeps it
    record(&s, &collected()).await;
    let c = resolve(&s, &r).await.unwrap();
    assert_eq!(c.reassigned, 0);
}
bdc_testsupport::both_backends!(declarative_file);
