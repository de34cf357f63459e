#include "normalize/normalize.hpp"
#include "normalize/pseudonym.hpp"

#include "model/timestamp.hpp"
#include "parse/response_parser.hpp"
#include "support/fixtures.hpp"

#include <catch2/catch.hpp>

#include <vector>

using comeback::comeback_row;
using comeback::entity;
using comeback::named_ref;
using comeback::normalize;
using comeback::office_ref;

namespace {

comeback_row row(std::size_t index, std::string id) {
    comeback_row r;
    r.index = index;
    r.id = std::move(id);
    return r;
}

}  // namespace

TEST_CASE("the help page sample normalizes to one of each entity and two comebacks", "[normalize]") {
    const auto parsed = comeback::parse_response(
        comeback::test::read_fixture("responses/help_page_sample.json"),
        comeback::find_zone("Europe/Stockholm"));
    const auto batch = normalize("M12345", parsed.rows);
    CHECK(batch.customer_id == "M12345");
    CHECK(batch.contacts == std::vector<entity>{{"sample string 1", "sample string 2"}});
    CHECK(batch.users == std::vector<entity>{{"sample string 1", "sample string 2"}});
    CHECK(batch.user_groups == std::vector<entity>{{"sample string 1", "sample string 2"}});
    CHECK(batch.offices == std::vector<entity>{{"sample string 1", "sample string 2"}});
    REQUIRE(batch.comebacks.size() == 2);
    const auto& record = batch.comebacks[1];
    CHECK(record.index == 1);
    CHECK(record.id == "sample string 1");
    CHECK(record.contact_id == "sample string 1");
    CHECK(record.booked_by_user_id == "sample string 1");
    CHECK(record.assigned_user_id == "sample string 1");
    CHECK(record.assigned_group_id == "sample string 1");
    CHECK(record.assigned_office_id == "sample string 1");
    CHECK(record.state == "New");
    CHECK(record.origin == "User");
    CHECK(record.occurs_at == parsed.rows[1].occurs_at);
    CHECK(record.booked_at == parsed.rows[1].booked_at);
}

TEST_CASE("booked-by and assigned users share one set where the last name wins", "[normalize]") {
    std::vector<comeback_row> rows;
    rows.push_back(row(0, "A"));
    rows.back().booked_by = named_ref{"U1", "Anna"};
    rows.back().assigned_user = named_ref{"U2", "Bo"};
    rows.push_back(row(1, "B"));
    rows.back().booked_by = named_ref{"U2", "Bo Berg"};
    rows.back().assigned_user = named_ref{"U1", "Anna Ek"};
    rows.push_back(row(2, "C"));
    rows.back().booked_by = named_ref{"U3", "Cia"};

    const auto batch = normalize("M1", rows);
    CHECK(batch.users == std::vector<entity>{{"U1", "Anna Ek"}, {"U2", "Bo Berg"}, {"U3", "Cia"}});
    CHECK(batch.comebacks[1].booked_by_user_id == "U2");
    CHECK(batch.comebacks[1].assigned_user_id == "U1");
}

TEST_CASE("offices are keyed by their customer id and groups by their id", "[normalize]") {
    std::vector<comeback_row> rows;
    rows.push_back(row(0, "A"));
    rows.back().assigned_office = office_ref{"M100", "Syd"};
    rows.push_back(row(1, "B"));
    rows.back().assigned_office = office_ref{"M200", "Nord"};
    rows.back().assigned_group = named_ref{"G1", "Säljare"};
    rows.push_back(row(2, "C"));
    rows.back().assigned_office = office_ref{"M100", "Syd (Lund)"};
    rows.back().assigned_group = named_ref{"G1", "Säljteam"};

    const auto batch = normalize("M1", rows);
    CHECK(batch.offices == std::vector<entity>{{"M100", "Syd (Lund)"}, {"M200", "Nord"}});
    CHECK(batch.user_groups == std::vector<entity>{{"G1", "Säljteam"}});
    CHECK(batch.comebacks[0].assigned_office_id == "M100");
    CHECK_FALSE(batch.comebacks[0].assigned_group_id);
    CHECK(batch.comebacks[2].assigned_group_id == "G1");
}

TEST_CASE("comebacks keep array order and every duplicate", "[normalize]") {
    const auto parsed = comeback::parse_response(
        comeback::test::read_fixture("responses/duplicates.json"),
        comeback::find_zone("Europe/Stockholm"));
    const auto batch = normalize("M1", parsed.rows);
    REQUIRE(batch.comebacks.size() == 3);
    CHECK(batch.comebacks[0].id == "A");
    CHECK(batch.comebacks[1].id == "B");
    CHECK(batch.comebacks[2].id == "A");
    CHECK(batch.comebacks[2].index == 2);
    CHECK(batch.comebacks[2].state == "Completed");
    CHECK(batch.contacts == std::vector<entity>{{"C1", "Anna Andersson"}, {"C2", "Bo"}});
}

TEST_CASE("absent nested objects leave no entity and no key", "[normalize]") {
    std::vector<comeback_row> rows{row(0, "A")};
    const auto batch = normalize("M1", rows);
    CHECK(batch.contacts.empty());
    CHECK(batch.users.empty());
    CHECK(batch.user_groups.empty());
    CHECK(batch.offices.empty());
    REQUIRE(batch.comebacks.size() == 1);
    CHECK_FALSE(batch.comebacks[0].contact_id);
    CHECK_FALSE(batch.comebacks[0].booked_by_user_id);
    CHECK_FALSE(batch.comebacks[0].assigned_user_id);
    CHECK_FALSE(batch.comebacks[0].assigned_office_id);
    CHECK(normalize("M1", {}).comebacks.empty());
}

TEST_CASE("a null name never replaces a name seen before it, and a name never seen stays unknown", "[normalize]") {
    std::vector<comeback_row> rows;
    rows.push_back(row(0, "A"));
    rows.back().contact = named_ref{"C1", "Anna"};
    rows.back().booked_by = named_ref{"U1", std::nullopt};
    rows.push_back(row(1, "B"));
    rows.back().contact = named_ref{"C1", std::nullopt};
    rows.back().booked_by = named_ref{"U1", "Bo"};
    rows.push_back(row(2, "C"));
    rows.back().contact = named_ref{"C2", std::nullopt};

    const auto batch = normalize("M1", rows);
    CHECK(batch.contacts == std::vector<entity>{{"C1", "Anna"}, {"C2", std::nullopt}});
    CHECK(batch.users == std::vector<entity>{{"U1", "Bo"}});
}

TEST_CASE("contact names are kept, pseudonymized with the key, or omitted; staff names always kept", "[normalize][privacy]") {
    std::vector<comeback_row> rows;
    rows.push_back(row(0, "A"));
    rows.back().contact = named_ref{"C1", "Anna Andersson"};
    rows.back().booked_by = named_ref{"U1", "Bo Berg"};
    rows.push_back(row(1, "B"));
    rows.back().contact = named_ref{"C2", "Anna Andersson"};  // the same person entered twice
    rows.push_back(row(2, "C"));
    rows.back().contact = named_ref{"C3", std::nullopt};

    const auto kept = normalize("M1", rows, {comeback::contact_names::keep, {}});
    CHECK(kept.contacts[0].name == "Anna Andersson");

    const comeback::contact_name_rule pseudonyms{comeback::contact_names::pseudonymize, "key-1"};
    const auto hashed = normalize("M1", rows, pseudonyms);
    REQUIRE(hashed.contacts.size() == 3);
    REQUIRE(hashed.contacts[0].name);
    CHECK(comeback::is_pseudonym(*hashed.contacts[0].name));
    CHECK(hashed.contacts[0].name == hashed.contacts[1].name);  // equal names stay equal
    CHECK(hashed.contacts[0].name->find("Anna") == std::string::npos);
    CHECK_FALSE(hashed.contacts[2].name);  // no name, no pseudonym
    CHECK(hashed.users == std::vector<entity>{{"U1", "Bo Berg"}});
    // Another key, or another customer, gives another pseudonym: nobody without
    // the key can confirm a guess, and customers are not linked.
    CHECK(normalize("M1", rows, {comeback::contact_names::pseudonymize, "key-2"}).contacts[0].name !=
          hashed.contacts[0].name);
    CHECK(normalize("M2", rows, pseudonyms).contacts[0].name != hashed.contacts[0].name);
    CHECK(normalize("M1", rows, pseudonyms).contacts[0].name == hashed.contacts[0].name);

    const auto omitted = normalize("M1", rows, {comeback::contact_names::omit, {}});
    for (const auto& contact : omitted.contacts) CHECK_FALSE(contact.name);
    CHECK(omitted.comebacks[0].contact_id == "C1");  // contacts are still counted by id

    CHECK_THROWS_AS(normalize("M1", rows, {comeback::contact_names::pseudonymize, {}}), std::invalid_argument);
}

TEST_CASE("a pseudonym has one recognisable shape", "[privacy]") {
    const auto pseudonym = comeback::pseudonymize_name("k", "M1", "Anna");
    // Pinned: a stored pseudonym must stay what the next load computes, in
    // any build. HMAC-SHA-256 over "M1", NUL, "Anna" with the key "k", as
    // `printf 'M1\0Anna' | openssl dgst -sha256 -hmac k` gives it.
    CHECK(pseudonym == "pseudonym:d10ba61d4e3b617254098ac267367d4d");
    CHECK(pseudonym.size() == 42);
    CHECK(pseudonym.rfind("pseudonym:", 0) == 0);
    CHECK(comeback::is_pseudonym(pseudonym));
    CHECK_FALSE(comeback::is_pseudonym("Anna"));
    CHECK_FALSE(comeback::is_pseudonym("pseudonym:0123"));
    CHECK_FALSE(comeback::is_pseudonym("pseudonym:0123456789ABCDEF0123456789abcdef"));
}
