#include "normalize/normalize.hpp"

#include "normalize/pseudonym.hpp"

#include <stdexcept>

#include <string_view>
#include <unordered_map>

namespace comeback {
namespace {

// One entity set: each id once, in order of first appearance, with the last
// name seen. The index keys are views into the input rows, which outlive it.
class entity_set {
public:
    entity_set(std::vector<entity>& out, std::size_t expected) : out_(out) {
        index_.reserve(expected);
        out_.reserve(expected);
    }

    void add(const std::string& id, const std::optional<std::string>& name) {
        const auto [it, inserted] = index_.try_emplace(std::string_view{id}, out_.size());
        if (inserted) {
            out_.push_back(entity{id, name});
        } else if (name) {
            out_[it->second].name = name;
        }
    }

private:
    std::vector<entity>& out_;
    std::unordered_map<std::string_view, std::size_t> index_;
};

std::optional<std::string> id_of(const std::optional<named_ref>& ref) {
    if (!ref) return std::nullopt;
    return ref->id;
}

// The contact's name as privacy.contact_names stores it.
std::optional<std::string> contact_name(const contact_name_rule& rule, const std::string& customer_id,
                                        const std::optional<std::string>& name) {
    switch (rule.mode) {
    case contact_names::keep: return name;
    case contact_names::omit: return std::nullopt;
    case contact_names::pseudonymize:
        if (!name) return std::nullopt;
        return pseudonymize_name(rule.pseudonym_key, customer_id, *name);
    }
    return name;
}

}  // namespace

normalized_batch normalize(std::string customer_id, std::span<const comeback_row> rows,
                           const contact_name_rule& contact_rule) {
    if (contact_rule.mode == contact_names::pseudonymize && contact_rule.pseudonym_key.empty()) {
        throw std::invalid_argument("normalize: contact names are to be pseudonymized without a key");
    }
    normalized_batch batch;
    batch.customer_id = std::move(customer_id);
    entity_set contacts(batch.contacts, rows.size());
    entity_set users(batch.users, rows.size());
    entity_set user_groups(batch.user_groups, 0);
    entity_set offices(batch.offices, 0);
    batch.comebacks.reserve(rows.size());

    for (const comeback_row& row : rows) {
        if (row.contact) {
            contacts.add(row.contact->id, contact_name(contact_rule, batch.customer_id, row.contact->name));
        }
        // Booked-by and assigned users are the same people: one set.
        if (row.booked_by) users.add(row.booked_by->id, row.booked_by->name);
        if (row.assigned_user) users.add(row.assigned_user->id, row.assigned_user->name);
        if (row.assigned_group) user_groups.add(row.assigned_group->id, row.assigned_group->name);
        if (row.assigned_office) {
            offices.add(row.assigned_office->customer_id, row.assigned_office->name);
        }

        comeback_record& record = batch.comebacks.emplace_back();
        record.index = row.index;
        record.id = row.id;
        record.contact_id = id_of(row.contact);
        record.booked_by_user_id = id_of(row.booked_by);
        record.assigned_user_id = id_of(row.assigned_user);
        record.assigned_group_id = id_of(row.assigned_group);
        if (row.assigned_office) record.assigned_office_id = row.assigned_office->customer_id;
        record.state = row.state;
        record.origin = row.origin;
        record.occurs_at = row.occurs_at;
        record.booked_at = row.booked_at;
    }
    return batch;
}

}  // namespace comeback
