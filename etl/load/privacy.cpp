#include "load/privacy.hpp"

#include "load/copy_text.hpp"
#include "load/identifier.hpp"
#include "load/privacy_sql.hpp"
#include "load/window_loader_sql.hpp"
#include "normalize/pseudonym.hpp"

#include <pqxx/pqxx>

#include <cstdint>
#include <string>
#include <vector>

namespace comeback {

namespace {

void use_schema(pqxx::transaction_base& tx, std::string_view schema) {
    check_schema_name(schema);
    tx.exec_params1(sql::use_schema, std::string(schema));
}

// A text[] literal for an unnest() parameter.
std::string text_array(const std::vector<std::string>& values) {
    return copy_text::array_of(values.size(), [&](copy_text& rows, std::size_t i) { rows.text(values[i]); });
}

// Pseudonyms are written this many names per statement: a page of memory,
// whatever the table's size.
constexpr long long pseudonym_page = 5000;

std::size_t pseudonymize_stored_names(pqxx::connection& connection, std::string_view schema,
                                      std::string_view key) {
    std::size_t rewritten = 0;
    std::string after_customer, after_contact;
    for (;;) {
        pqxx::work tx{connection, "pseudonymize contact names"};
        use_schema(tx, schema);
        auto page = tx.exec_params(sql::privacy::read_named_contacts, after_customer, after_contact,
                                   pseudonym_page);
        if (page.empty()) break;
        std::vector<std::string> customers, contacts, names;
        for (const auto& row : page) {
            after_customer = row[0].as<std::string>();
            after_contact = row[1].as<std::string>();
            const auto name = row[2].as<std::string>();
            if (is_pseudonym(name)) continue;
            customers.push_back(after_customer);
            contacts.push_back(after_contact);
            names.push_back(pseudonymize_name(key, after_customer, name));
        }
        if (!names.empty()) {
            rewritten += static_cast<std::size_t>(
                tx.exec_params(sql::privacy::set_contact_names, text_array(customers),
                               text_array(contacts), text_array(names))
                    .affected_rows());
        }
        tx.commit();
        if (page.size() < static_cast<std::size_t>(pseudonym_page)) break;
    }
    return rewritten;
}

}  // namespace

contact_erasure forget_contact(pqxx::connection& connection, std::string_view schema,
                               std::string_view customer_id, std::string_view contact_id) {
    check_schema_name(schema);
    const std::string customer{customer_id}, contact{contact_id};
    pqxx::work tx{connection, "forget contact"};
    // The loads' own first statement: the schema, and the customer's lock,
    // so no load writes the name back in between. What it says of this
    // session's staging is not asked for (no size: 0). An erasure commits
    // as the server is set, never lazily: once done, it must stay done.
    tx.exec_params1(sql::window_loader::begin_load, std::string(schema), customer, std::int64_t{0}, false);
    contact_erasure erasure;
    std::string last_name;
    auto stored = tx.exec_params(sql::privacy::read_contact_name, customer, contact);
    if (!stored.empty() && !stored[0][0].is_null()) last_name = stored[0][0].as<std::string>();
    erasure.newly_recorded = !tx.exec_params(sql::privacy::record_erasure, customer, contact).empty();
    erasure.name_erased =
        tx.exec_params(sql::privacy::erase_contact_name, customer, contact).affected_rows() > 0;
    erasure.rejected_rows_withheld = static_cast<std::size_t>(
        tx.exec_params(sql::privacy::withhold_rejected_rows, customer, contact, last_name,
                       std::string(withheld_text))
            .affected_rows());
    if (!last_name.empty()) {
        erasure.ledger_errors_withheld = static_cast<std::size_t>(
            tx.exec_params(sql::privacy::withhold_ledger_errors, customer, last_name,
                           std::string(withheld_text))
                .affected_rows());
    }
    tx.commit();
    return erasure;
}

std::size_t rewrite_contact_names(pqxx::connection& connection, std::string_view schema,
                                  const contact_name_rule& rule) {
    check_schema_name(schema);
    switch (rule.mode) {
    case contact_names::keep: return 0;
    case contact_names::omit: {
        pqxx::work tx{connection, "omit contact names"};
        use_schema(tx, schema);
        const auto rewritten = tx.exec(sql::privacy::omit_contact_names).affected_rows();
        tx.commit();
        return static_cast<std::size_t>(rewritten);
    }
    case contact_names::pseudonymize: {
        if (rule.pseudonym_key.empty()) {
            throw std::invalid_argument("rewrite_contact_names: pseudonymize without a key");
        }
        const std::size_t rewritten = pseudonymize_stored_names(connection, schema, rule.pseudonym_key);
        return rewritten;
    }
    }
    return 0;
}

std::size_t purge_rejected_raw(pqxx::connection& connection, std::string_view schema,
                               std::chrono::seconds retention) {
    pqxx::work tx{connection, "purge rejected raw text"};
    use_schema(tx, schema);
    const auto purged = tx.exec_params(sql::privacy::purge_all_rejected_raw,
                                       static_cast<long long>(retention.count()))
                            .affected_rows();
    tx.commit();
    return static_cast<std::size_t>(purged);
}

}  // namespace comeback
