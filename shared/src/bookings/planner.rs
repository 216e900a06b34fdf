//! The seat planner: given a batch's requests and the seats a reservation transaction read,
//! decide which seats go to which booking and who is turned away, and why. A pure function,
//! so that the heart of the product is tested without a database (unit and property tests
//! below); the transaction around it (`reserve`) reads the seats, locks what the plan takes and
//! writes it.
//!
//! The rules, in the order the requests arrived:
//! - a booking gets every seat it asked for or none;
//! - no seat goes to two bookings;
//! - a buyer never holds more than the showtime's cap (bookings an admin makes are exempt);
//! - named seats must all be free;
//! - best available takes adjacent seats in one row when there are any, in the best row that
//!   has them; within that row it takes the first block that leaves no single seat stranded
//!   between the block and a taken seat or the row's end, if one does (a buyer is never sent
//!   to a worse row, and perhaps another price, to spare a single seat); failing adjacency, the
//!   best free seats.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use uuid::Uuid;

use super::{RejectReason, SeatSelection};

/// A booking of the batch still to be decided.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub id: Uuid,
    pub user_id: Uuid,
    pub quantity: i64,
    /// `None`: the stored request could not be read back, so no seat can be chosen for it.
    pub selection: Option<SeatSelection>,
    /// Made by an admin: not bound by the sale window or the per-buyer cap.
    pub manual: bool,
}

/// What the transaction saw of a seat asked for by name.
#[derive(Debug, Clone, Copy)]
pub(super) struct NamedSeat {
    pub free: bool,
    /// The booking whose lapsed hold sits on the seat (it is free, and taken over).
    pub lapsed_holder: Option<Uuid>,
}

/// A free seat of a section asked for best available.
#[derive(Debug, Clone)]
pub(super) struct FreeSeat {
    pub seat_id: Uuid,
    pub row_rank: i32,
    pub row_label: String,
    pub seat_number: i32,
    pub lapsed_holder: Option<Uuid>,
}

/// The seats a batch's transaction read.
#[derive(Debug, Clone, Default)]
pub(super) struct Seats {
    /// Every seat asked for by name; a seat missing here is not the showtime's.
    pub named: HashMap<Uuid, NamedSeat>,
    /// The free seats of each section asked for best available, best first (row rank, row,
    /// seat number). Only as many as the batch could use may have been read.
    pub free_by_section: HashMap<Uuid, Vec<FreeSeat>>,
    /// Sections whose free seats were all read.
    pub read_whole: BTreeSet<Uuid>,
}

/// Which seat goes to which booking, and who is turned away.
#[derive(Debug, Clone, Default)]
pub(super) struct Plan {
    /// Seat -> booking, ordered by seat.
    pub assigned: BTreeMap<Uuid, Uuid>,
    pub rejected: Vec<(Uuid, RejectReason)>,
    /// Bookings whose lapsed holds sit on seats the plan takes.
    pub lapsed_holders: BTreeSet<Uuid>,
    /// Sections read whole whose every free seat this plan takes.
    pub exhausted: Vec<Uuid>,
}

/// Decides every booking of `pending`, in order. `owned`: seats each buyer already holds in the
/// showtime outside the batch; `cap`: the most a buyer may hold.
pub(super) fn plan(
    pending: &[Pending],
    seats: &Seats,
    owned: &HashMap<Uuid, i64>,
    cap: i32,
) -> Plan {
    let mut plan = Plan::default();
    let mut owned = owned.clone();
    let mut taken: HashSet<Uuid> = HashSet::new();
    for booking in pending {
        let Some(selection) = &booking.selection else {
            plan.rejected.push((booking.id, RejectReason::InvalidSeats));
            continue;
        };
        let already = owned.get(&booking.user_id).copied().unwrap_or(0);
        if !booking.manual && already + booking.quantity > i64::from(cap) {
            plan.rejected.push((booking.id, RejectReason::LimitReached));
            continue;
        }
        let chosen: Result<Vec<(Uuid, Option<Uuid>)>, RejectReason> = match selection {
            SeatSelection::Named { seat_ids } => seat_ids
                .iter()
                .map(|seat| match seats.named.get(seat) {
                    None => Err(RejectReason::InvalidSeats),
                    Some(state) if !state.free || taken.contains(seat) => {
                        Err(RejectReason::SeatTaken)
                    }
                    Some(state) => Ok((*seat, state.lapsed_holder)),
                })
                .collect(),
            SeatSelection::BestAvailable {
                section_id,
                quantity,
            } => {
                let free: Vec<&FreeSeat> = seats
                    .free_by_section
                    .get(section_id)
                    .map(|section| {
                        section
                            .iter()
                            .filter(|seat| !taken.contains(&seat.seat_id))
                            .collect()
                    })
                    .unwrap_or_default();
                if free.len() < *quantity as usize {
                    Err(RejectReason::SoldOut)
                } else {
                    Ok(best_block(&free, *quantity as usize)
                        .into_iter()
                        .map(|seat| (seat.seat_id, seat.lapsed_holder))
                        .collect())
                }
            }
        };
        match chosen {
            Ok(chosen) => {
                for (seat, lapsed_holder) in chosen {
                    taken.insert(seat);
                    plan.assigned.insert(seat, booking.id);
                    plan.lapsed_holders.extend(lapsed_holder);
                }
                *owned.entry(booking.user_id).or_default() += booking.quantity;
            }
            Err(reason) => plan.rejected.push((booking.id, reason)),
        }
    }
    plan.exhausted = seats
        .read_whole
        .iter()
        .filter(|section| {
            seats
                .free_by_section
                .get(section)
                .is_none_or(|free| free.iter().all(|seat| taken.contains(&seat.seat_id)))
        })
        .copied()
        .collect();
    plan
}

/// `quantity` adjacent seats in the best row that has them, the first there that strands no
/// single seat if any does; failing adjacency, the best seats. `free` is best first. Linear in
/// the number of free seats.
fn best_block<'a>(free: &[&'a FreeSeat], quantity: usize) -> Vec<&'a FreeSeat> {
    let mut rows: BTreeMap<(i32, &str), Vec<&'a FreeSeat>> = BTreeMap::new();
    for seat in free {
        rows.entry((seat.row_rank, seat.row_label.as_str()))
            .or_default()
            .push(seat);
    }
    for row in rows.values() {
        let blocks: Vec<usize> = (0..(row.len() + 1).saturating_sub(quantity))
            .filter(|&start| adjacent(&row[start..start + quantity]))
            .collect();
        let Some(&first) = blocks.first() else {
            continue;
        };
        let start = blocks
            .iter()
            .copied()
            .find(|&start| !strands_a_seat(row, start, quantity))
            .unwrap_or(first);
        return row[start..start + quantity].to_vec();
    }
    free.iter().take(quantity).copied().collect()
}

fn adjacent(seats: &[&FreeSeat]) -> bool {
    seats
        .windows(2)
        .all(|pair| pair[1].seat_number == pair[0].seat_number + 1)
}

/// Whether taking the `quantity` seats from `start` out of `row` (a row's free seats, in seat
/// order) leaves a free seat beside them with no free neighbour: a single seat nobody buying
/// two can use. A seat past the last one read counts as taken, so at the edge of a partly read
/// row the answer may be yes when it is not; the block is then only passed over for another.
fn strands_a_seat(row: &[&FreeSeat], start: usize, quantity: usize) -> bool {
    // The free seat at `index`, if it is numbered `number`.
    let free_at = |index: Option<usize>, number: i32| {
        index
            .and_then(|index| row.get(index))
            .is_some_and(|seat| seat.seat_number == number)
    };
    let end = start + quantity;
    let (first, last) = (row[start].seat_number, row[end - 1].seat_number);
    let left = start.checked_sub(1);
    let stranded_left =
        free_at(left, first - 1) && !free_at(left.and_then(|i| i.checked_sub(1)), first - 2);
    let stranded_right = free_at(Some(end), last + 1) && !free_at(Some(end + 1), last + 2);
    stranded_left || stranded_right
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn seat(row_rank: i32, number: i32) -> FreeSeat {
        FreeSeat {
            seat_id: Uuid::new_v4(),
            row_rank,
            row_label: format!("R{row_rank}"),
            seat_number: number,
            lapsed_holder: None,
        }
    }

    fn numbers(seats: &[&FreeSeat]) -> Vec<(i32, i32)> {
        seats
            .iter()
            .map(|seat| (seat.row_rank, seat.seat_number))
            .collect()
    }

    fn pick(seats: &[FreeSeat], quantity: usize) -> Vec<(i32, i32)> {
        let refs: Vec<&FreeSeat> = seats.iter().collect();
        numbers(&best_block(&refs, quantity))
    }

    #[test]
    fn adjacent_seats_in_the_best_row_win() {
        let seats = [
            seat(0, 1),
            seat(0, 3),
            seat(1, 4),
            seat(1, 5),
            seat(2, 1),
            seat(2, 2),
        ];
        assert_eq!(pick(&seats, 2), vec![(1, 4), (1, 5)]);
    }

    #[test]
    fn without_a_block_the_best_seats_are_taken() {
        let seats = [seat(0, 1), seat(0, 3), seat(1, 7)];
        assert_eq!(pick(&seats, 2), vec![(0, 1), (0, 3)]);
    }

    #[test]
    fn a_block_that_strands_a_seat_gives_way_to_one_in_the_same_row_that_does_not() {
        // Row 0: 1-4 free, 5 taken, 6-8 free. Three from 1 would strand 4; 6-8 strands nothing.
        let seats: Vec<FreeSeat> = [1, 2, 3, 4, 6, 7, 8].map(|n| seat(0, n)).into();
        assert_eq!(pick(&seats, 3), vec![(0, 6), (0, 7), (0, 8)]);
    }

    #[test]
    fn a_buyer_is_not_sent_to_a_worse_row_to_spare_a_seat() {
        // Row 0 has 1-3 free: any pair strands a seat. Row 1 has room, but it is worse.
        let seats: Vec<FreeSeat> = [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (1, 4)]
            .map(|(row, n)| seat(row, n))
            .into();
        assert_eq!(pick(&seats, 2), vec![(0, 1), (0, 2)]);
    }

    /// Sections, each with its free seats (best first).
    type Layout = Vec<(Uuid, Vec<FreeSeat>)>;

    /// A showtime's free seats: 1 to 3 sections of 1 to 4 rows of 1 to 12 seats, each seat
    /// free or not; some free seats sit under a lapsed hold.
    fn layout() -> impl Strategy<Value = Layout> {
        let row = prop::collection::vec((any::<bool>(), any::<bool>()), 1..=12);
        prop::collection::vec(prop::collection::vec(row, 1..=4), 1..=3).prop_map(|sections| {
            sections
                .into_iter()
                .map(|rows| {
                    let free = rows
                        .into_iter()
                        .enumerate()
                        .flat_map(|(rank, row)| {
                            row.into_iter()
                                .enumerate()
                                .filter(|(_, (free, _))| *free)
                                .map(move |(number, (_, lapsed))| FreeSeat {
                                    lapsed_holder: lapsed.then(Uuid::new_v4),
                                    ..seat(rank as i32, number as i32 + 1)
                                })
                        })
                        .collect();
                    (Uuid::new_v4(), free)
                })
                .collect()
        })
    }

    /// One request: (buyer among four, which seats or section, quantity, by name, made by an
    /// admin, unreadable).
    type Ask = (usize, u8, u32, bool, bool, bool);

    fn asks() -> impl Strategy<Value = Vec<Ask>> {
        prop::collection::vec(
            (
                0usize..4,
                any::<u8>(),
                1u32..=4,
                any::<bool>(),
                prop::bool::weighted(0.1),
                prop::bool::weighted(0.05),
            ),
            0..=24,
        )
    }

    /// The batch and the seats its transaction read: every free seat is also known by name,
    /// with one seat that is taken and one that is not the showtime's.
    fn build(sections: &Layout, asks: &[Ask], buyers: &[Uuid]) -> (Vec<Pending>, Seats) {
        let mut seats = Seats::default();
        let every_free: Vec<&FreeSeat> = sections.iter().flat_map(|(_, free)| free).collect();
        for (section_id, free) in sections {
            seats.free_by_section.insert(*section_id, free.clone());
            seats.read_whole.insert(*section_id);
        }
        for seat in &every_free {
            seats.named.insert(
                seat.seat_id,
                NamedSeat {
                    free: true,
                    lapsed_holder: seat.lapsed_holder,
                },
            );
        }
        let (taken, foreign) = (Uuid::new_v4(), Uuid::new_v4());
        seats.named.insert(
            taken,
            NamedSeat {
                free: false,
                lapsed_holder: None,
            },
        );
        let choices: Vec<Uuid> = every_free
            .iter()
            .map(|seat| seat.seat_id)
            .chain([taken, foreign])
            .collect();
        let pending = asks
            .iter()
            .map(|&(buyer, pick, quantity, named, manual, unreadable)| {
                let selection = if named {
                    let seat_ids: BTreeSet<Uuid> = (0..quantity as usize)
                        .map(|k| choices[(usize::from(pick) + 3 * k) % choices.len()])
                        .collect();
                    SeatSelection::Named {
                        seat_ids: seat_ids.into_iter().collect(),
                    }
                } else {
                    SeatSelection::BestAvailable {
                        section_id: sections[usize::from(pick) % sections.len()].0,
                        quantity,
                    }
                };
                Pending {
                    id: Uuid::new_v4(),
                    user_id: buyers[buyer],
                    quantity: i64::from(selection.quantity()),
                    selection: (!unreadable).then_some(selection),
                    manual,
                }
            })
            .collect();
        (pending, seats)
    }

    /// Whether taking `block` from `row` leaves a free seat alone (no free seat either side)
    /// that was not alone before, counted over the whole row.
    fn strands(row: &[&FreeSeat], block: &[&FreeSeat]) -> bool {
        let alone = |free: &BTreeSet<i32>| -> BTreeSet<i32> {
            free.iter()
                .filter(|n| !free.contains(&(**n - 1)) && !free.contains(&(**n + 1)))
                .copied()
                .collect()
        };
        let before: BTreeSet<i32> = row.iter().map(|seat| seat.seat_number).collect();
        let mut after = before.clone();
        for seat in block {
            after.remove(&seat.seat_number);
        }
        alone(&after).difference(&alone(&before)).next().is_some()
    }

    proptest! {
        /// Replays the batch in order beside the plan: each booking is reserved exactly when
        /// it could be (its seats free and not taken earlier in the batch, under the cap), with
        /// all its seats, or rejected for the first reason that applies; and the plan's lapsed
        /// holders and exhausted sections follow from what it took.
        #[test]
        fn each_booking_is_decided_as_the_rules_say(
            sections in layout(),
            asks in asks(),
            owned_before in prop::collection::vec(0i64..4, 4),
            cap in 1i32..=8,
        ) {
            let buyers: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
            let (pending, seats) = build(&sections, &asks, &buyers);
            let owned: HashMap<Uuid, i64> = buyers.iter().copied().zip(owned_before).collect();
            let plan = plan(&pending, &seats, &owned, cap);

            let rejected: HashMap<Uuid, RejectReason> = plan.rejected.iter().copied().collect();
            let mut taken: HashSet<Uuid> = HashSet::new();
            let mut held = owned.clone();
            for booking in &pending {
                let got: Vec<Uuid> = plan.assigned.iter()
                    .filter(|(_, owner)| **owner == booking.id)
                    .map(|(seat, _)| *seat)
                    .collect();
                let expected: Result<(), RejectReason> = match &booking.selection {
                    None => Err(RejectReason::InvalidSeats),
                    Some(_) if !booking.manual && held[&booking.user_id] + booking.quantity > i64::from(cap) => {
                        Err(RejectReason::LimitReached)
                    }
                    Some(SeatSelection::Named { seat_ids }) => seat_ids.iter().try_for_each(|seat| {
                        match seats.named.get(seat) {
                            None => Err(RejectReason::InvalidSeats),
                            Some(state) if !state.free || taken.contains(seat) => Err(RejectReason::SeatTaken),
                            Some(_) => Ok(()),
                        }
                    }),
                    Some(SeatSelection::BestAvailable { section_id, quantity }) => {
                        let left = seats.free_by_section[section_id].iter()
                            .filter(|seat| !taken.contains(&seat.seat_id))
                            .count();
                        if left < *quantity as usize { Err(RejectReason::SoldOut) } else { Ok(()) }
                    }
                };
                match expected {
                    Err(reason) => {
                        prop_assert_eq!(rejected.get(&booking.id), Some(&reason));
                        prop_assert!(got.is_empty());
                    }
                    Ok(()) => {
                        prop_assert!(!rejected.contains_key(&booking.id), "{:?}", rejected.get(&booking.id));
                        prop_assert_eq!(got.len() as i64, booking.quantity);
                        prop_assert!(got.iter().all(|seat| !taken.contains(seat)));
                        match booking.selection.as_ref() {
                            Some(SeatSelection::Named { seat_ids }) => prop_assert_eq!(&got, seat_ids),
                            Some(SeatSelection::BestAvailable { section_id, .. }) => {
                                let section = &seats.free_by_section[section_id];
                                prop_assert!(got.iter().all(|seat| section.iter().any(|free| free.seat_id == *seat)));
                            }
                            None => unreachable!(),
                        }
                        taken.extend(got);
                        *held.entry(booking.user_id).or_default() += booking.quantity;
                    }
                }
            }
            prop_assert_eq!(taken.len(), plan.assigned.len(), "no seat handed out but to its booking");
            let holders: BTreeSet<Uuid> = taken.iter()
                .filter_map(|seat| seats.named[seat].lapsed_holder)
                .collect();
            prop_assert_eq!(&plan.lapsed_holders, &holders);
            let exhausted: Vec<Uuid> = seats.read_whole.iter()
                .filter(|section| seats.free_by_section[*section].iter().all(|seat| taken.contains(&seat.seat_id)))
                .copied()
                .collect();
            prop_assert_eq!(&plan.exhausted, &exhausted);
        }

        /// One best-available request: the first block of the best row with adjacent seats
        /// that strands no seat in that row, else that row's first block; with no adjacent
        /// seats anywhere, the best seats.
        #[test]
        fn best_available_takes_the_best_rows_block_and_strands_no_seat_it_can_avoid_there(
            sections in layout(),
            quantity in 1usize..=4,
        ) {
            let free: Vec<&FreeSeat> = sections[0].1.iter().collect();
            prop_assume!(free.len() >= quantity);
            let mut rows: BTreeMap<i32, Vec<&FreeSeat>> = BTreeMap::new();
            for seat in &free {
                rows.entry(seat.row_rank).or_default().push(seat);
            }
            let side_by_side = |block: &[&FreeSeat]| block.windows(2)
                .all(|pair| pair[1].seat_number == pair[0].seat_number + 1);
            let expected = rows.values()
                .find_map(|row| {
                    let blocks: Vec<&[&FreeSeat]> = row.windows(quantity).filter(|b| side_by_side(b)).collect();
                    let first = *blocks.first()?;
                    Some(blocks.iter().copied().find(|b| !strands(row, b)).unwrap_or(first).to_vec())
                })
                .unwrap_or_else(|| free[..quantity].to_vec());
            prop_assert_eq!(numbers(&best_block(&free, quantity)), numbers(&expected));
        }
    }
}
