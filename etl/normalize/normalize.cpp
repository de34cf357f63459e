#include "normalize/normalize.hpp"

#include "normalize/pseudonym.hpp"

#include <algorithm>
#include <bit>
#include <functional>
#include <stdexcept>
#include <string_view>

namespace comeback {
namespace {

// One entity set: each id once, in order of first appearance, with the last
// name seen. The index is open addressing over positions in `out`: a batch
// brings up to a contact per row, and a hash node for each was most of the
// time normalize took.
class entity_set {
public:
    entity_set(std::vector<entity>& out, std::size_t expected) : out_(out) {
        out_.reserve(expected);
        positions_.assign(std::bit_ceil(std::max<std::size_t>(2 * expected, 16)), free_slot);
    }

    // Copies the id, which the comeback record keeps too; moves the name.
    void add(const std::string& id, std::optional<std::string>&& name) {
        std::size_t& position = slot_of(id);
        if (position == free_slot) {
            position = out_.size();
            out_.push_back(entity{id, std::move(name)});
            if (2 * out_.size() > positions_.size()) grow();
        } else if (name) {
            out_[position].name = std::move(name);
        }
    }

private:
    static constexpr std::size_t free_slot = std::size_t(-1);

    // The slot holding `id`'s position in out_, or the free one where it would go.
    std::size_t& slot_of(std::string_view id) {
        const std::size_t mask = positions_.size() - 1;
        for (std::size_t slot = std::hash<std::string_view>{}(id) & mask;; slot = (slot + 1) & mask) {
            std::size_t& position = positions_[slot];
            if (position == free_slot || out_[position].id == id) return position;
        }
    }

    // Keeps at least half of the slots free, so that a search ends soon.
    void grow() {
        positions_.assign(2 * positions_.size(), free_slot);
        for (std::size_t position = 0; position < out_.size(); ++position) {
            slot_of(out_[position].id) = position;
        }
    }

    std::vector<entity>& out_;
    std::vector<std::size_t> positions_;  // power-of-two size
};

std::optional<std::string> id_of(std::optional<named_ref>& ref) {
    if (!ref) return std::nullopt;
    return std::move(ref->id);
}

// The contact's name as privacy.contact_names stores it.
std::optional<std::string> contact_name(const contact_name_rule& rule, const std::string& customer_id,
                                        std::optional<std::string>&& name) {
    switch (rule.mode) {
    case contact_names::keep: return std::move(name);
    case contact_names::omit: return std::nullopt;
    case contact_names::pseudonymize:
        if (!name) return std::nullopt;
        return pseudonymize_name(rule.pseudonym_key, customer_id, *name);
    }
    return name;
}

}  // namespace

normalized_batch normalize(std::string customer_id, std::vector<comeback_row> rows,
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

    for (comeback_row& row : rows) {
        // Each nested object gives its name to its entity set, then its id to the record.
        if (row.contact) {
            contacts.add(row.contact->id,
                         contact_name(contact_rule, batch.customer_id, std::move(row.contact->name)));
        }
        // Booked-by and assigned users are the same people: one set.
        if (row.booked_by) users.add(row.booked_by->id, std::move(row.booked_by->name));
        if (row.assigned_user) users.add(row.assigned_user->id, std::move(row.assigned_user->name));
        if (row.assigned_group) user_groups.add(row.assigned_group->id, std::move(row.assigned_group->name));
        if (row.assigned_office) {
            offices.add(row.assigned_office->customer_id, std::move(row.assigned_office->name));
        }

        comeback_record& record = batch.comebacks.emplace_back();
        record.index = row.index;
        record.id = std::move(row.id);
        record.contact_id = id_of(row.contact);
        record.booked_by_user_id = id_of(row.booked_by);
        record.assigned_user_id = id_of(row.assigned_user);
        record.assigned_group_id = id_of(row.assigned_group);
        if (row.assigned_office) record.assigned_office_id = std::move(row.assigned_office->customer_id);
        record.state = std::move(row.state);
        record.origin = std::move(row.origin);
        record.occurs_at = row.occurs_at;
        record.booked_at = row.booked_at;
    }
    return batch;
}

}  // namespace comeback
