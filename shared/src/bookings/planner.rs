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
//!   has them, and, where another block avoids it, never leaves a single seat stranded between
//!   the block and a taken seat or the row's end; failing adjacency, the best free seats.

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

/// `quantity` adjacent seats in one row, in the best row that has them, preferring a block
/// that strands no single seat; failing adjacency, the best seats. `free` is best first.
fn best_block<'a>(free: &[&'a FreeSeat], quantity: usize) -> Vec<&'a FreeSeat> {
    let mut rows: BTreeMap<(i32, &str), Vec<&'a FreeSeat>> = BTreeMap::new();
    for seat in free {
        rows.entry((seat.row_rank, seat.row_label.as_str()))
            .or_default()
            .push(seat);
    }
    let blocks = || {
        rows.values().flat_map(move |row| {
            row.windows(quantity)
                .filter(|window| {
                    window
                        .windows(2)
                        .all(|pair| pair[1].seat_number == pair[0].seat_number + 1)
                })
                .map(move |window| (row.as_slice(), window))
        })
    };
    let chosen = blocks()
        .find(|(row, block)| !strands_a_seat(row, block))
        .or_else(|| blocks().next());
    match chosen {
        Some((_, block)) => block.to_vec(),
        None => free.iter().take(quantity).copied().collect(),
    }
}

/// Whether taking `block` out of `row` (a row's free seats, in seat order) leaves a free seat
/// next to it with no free neighbour: a single seat nobody buying two can use.
fn strands_a_seat(row: &[&FreeSeat], block: &[&FreeSeat]) -> bool {
    let free = |number: i32| row.iter().any(|seat| seat.seat_number == number);
    let (Some(first), Some(last)) = (block.first(), block.last()) else {
        return false;
    };
    let stranded = |beside: i32, beyond: i32| free(beside) && !free(beyond);
    stranded(first.seat_number - 1, first.seat_number - 2)
        || stranded(last.seat_number + 1, last.seat_number + 2)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn seat(row_rank: i32, row: &str, number: i32) -> FreeSeat {
        FreeSeat {
            seat_id: Uuid::new_v4(),
            row_rank,
            row_label: row.into(),
            seat_number: number,
            lapsed_holder: None,
        }
    }

    fn ids(seats: &[&FreeSeat]) -> Vec<Uuid> {
        seats.iter().map(|seat| seat.seat_id).collect()
    }

    #[test]
    fn adjacent_seats_in_the_best_row_win() {
        let seats = [
            seat(0, "A", 1),
            seat(0, "A", 3),
            seat(1, "B", 4),
            seat(1, "B", 5),
            seat(2, "C", 1),
            seat(2, "C", 2),
        ];
        let refs: Vec<&FreeSeat> = seats.iter().collect();
        assert_eq!(
            ids(&best_block(&refs, 2)),
            vec![seats[2].seat_id, seats[3].seat_id]
        );
    }

    #[test]
    fn without_a_block_the_best_seats_are_taken() {
        let seats = [seat(0, "A", 1), seat(0, "A", 3), seat(1, "B", 7)];
        let refs: Vec<&FreeSeat> = seats.iter().collect();
        assert_eq!(
            ids(&best_block(&refs, 2)),
            vec![seats[0].seat_id, seats[1].seat_id]
        );
    }

    #[test]
    fn a_block_that_strands_a_seat_gives_way_to_one_that_does_not() {
        // Row A: 1-4 free, 5 taken, 6-8 free. Three from 1 would strand 4; 6-8 strands nothing.
        let seats: Vec<FreeSeat> = [1, 2, 3, 4, 6, 7, 8]
            .into_iter()
            .map(|number| seat(0, "A", number))
            .collect();
        let refs: Vec<&FreeSeat> = seats.iter().collect();
        let numbers: Vec<i32> = best_block(&refs, 3)
            .iter()
            .map(|seat| seat.seat_number)
            .collect();
        assert_eq!(numbers, vec![6, 7, 8]);
    }

    /// Sections, each with its free seats.
    type Layout = Vec<(Uuid, Vec<FreeSeat>)>;
    /// Requests: (buyer among four, which seat or section, quantity, by name).
    type Asks = Vec<(usize, u8, u32, bool)>;

    /// A showtime's free seats: up to 3 sections of up to 4 rows of up to 10 seats, each seat
    /// free or not.
    fn layout() -> impl Strategy<Value = Layout> {
        prop::collection::vec(
            prop::collection::vec(prop::collection::vec(any::<bool>(), 1..10), 1..4),
            1..3,
        )
        .prop_map(|sections| {
            sections
                .into_iter()
                .map(|rows| {
                    let free = rows
                        .into_iter()
                        .enumerate()
                        .flat_map(|(rank, row)| {
                            row.into_iter().enumerate().filter(|(_, free)| *free).map(
                                move |(number, _)| {
                                    seat(rank as i32, &format!("R{rank}"), number as i32 + 1)
                                },
                            )
                        })
                        .collect();
                    (Uuid::new_v4(), free)
                })
                .collect()
        })
    }

    /// A batch against `layout`: each request is by a buyer among four, for best available in
    /// a section or for named seats (sometimes one that is taken or not the showtime's).
    fn batch() -> impl Strategy<Value = (Layout, Asks)> {
        (
            layout(),
            prop::collection::vec((0usize..4, any::<u8>(), 1u32..5, any::<bool>()), 0..24),
        )
    }

    fn build(
        sections: &[(Uuid, Vec<FreeSeat>)],
        asks: &[(usize, u8, u32, bool)],
        buyers: &[Uuid],
    ) -> (Vec<Pending>, Seats) {
        let mut seats = Seats::default();
        let every_free: Vec<&FreeSeat> = sections.iter().flat_map(|(_, free)| free).collect();
        for (section_id, free) in sections {
            seats.free_by_section.insert(*section_id, free.clone());
            seats.read_whole.insert(*section_id);
        }
        let taken_seat = Uuid::new_v4();
        seats.named.insert(
            taken_seat,
            NamedSeat {
                free: false,
                lapsed_holder: None,
            },
        );
        for seat in &every_free {
            seats.named.insert(
                seat.seat_id,
                NamedSeat {
                    free: true,
                    lapsed_holder: None,
                },
            );
        }
        let pending = asks
            .iter()
            .map(|&(buyer, pick, quantity, named)| {
                let selection = if named && !every_free.is_empty() {
                    let mut seat_ids: Vec<Uuid> = (0..quantity as usize)
                        .map(|k| {
                            let index = (usize::from(pick) + 3 * k) % (every_free.len() + 1);
                            every_free
                                .get(index)
                                .map_or(taken_seat, |seat| seat.seat_id)
                        })
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    seat_ids.sort();
                    SeatSelection::Named { seat_ids }
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
                    selection: Some(selection),
                    manual: false,
                }
            })
            .collect();
        (pending, seats)
    }

    /// Whether taking `block` from `row` leaves a free seat alone (no free seat either side)
    /// that was not alone before: counted over the whole row, independently of the planner's
    /// own check.
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
        #[test]
        fn every_booking_gets_all_its_seats_or_none_and_no_seat_twice(
            (sections, asks) in batch(),
            cap in 1i32..10,
        ) {
            let buyers: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
            let (pending, seats) = build(&sections, &asks, &buyers);
            let plan = plan(&pending, &seats, &HashMap::new(), cap);

            let mut held: HashMap<Uuid, i64> = HashMap::new();
            for booking in &pending {
                let got: Vec<Uuid> = plan.assigned.iter()
                    .filter(|(_, owner)| **owner == booking.id)
                    .map(|(seat, _)| *seat)
                    .collect();
                let rejected = plan.rejected.iter().any(|(id, _)| *id == booking.id);
                // All or none, and exactly one outcome.
                prop_assert!(rejected == got.is_empty(), "booking {} got {} seats, rejected {rejected}", booking.id, got.len());
                if !got.is_empty() {
                    prop_assert_eq!(got.len() as i64, booking.quantity);
                    *held.entry(booking.user_id).or_default() += booking.quantity;
                    // Only free seats of what was asked for.
                    match booking.selection.as_ref().unwrap() {
                        SeatSelection::Named { seat_ids } => {
                            let mut got = got.clone();
                            got.sort();
                            prop_assert_eq!(&got, seat_ids);
                        }
                        SeatSelection::BestAvailable { section_id, .. } => {
                            let section = &seats.free_by_section[section_id];
                            prop_assert!(got.iter().all(|seat| section.iter().any(|free| free.seat_id == *seat)));
                        }
                    }
                }
            }
            // A seat is a key of `assigned`: no seat can be there twice; every seat handed out
            // was free.
            prop_assert!(plan.assigned.keys().all(|seat| seats.named.get(seat).is_some_and(|s| s.free)));
            // The cap.
            prop_assert!(held.values().all(|count| *count <= i64::from(cap)));
        }

        #[test]
        fn best_available_takes_a_block_in_one_row_when_there_is_one_and_strands_no_seat_it_can_avoid(
            sections in layout(),
            quantity in 1u32..5,
        ) {
            let (section_id, free) = &sections[0];
            let booking = Pending {
                id: Uuid::new_v4(),
                user_id: Uuid::new_v4(),
                quantity: i64::from(quantity),
                selection: Some(SeatSelection::BestAvailable { section_id: *section_id, quantity }),
                manual: false,
            };
            let mut seats = Seats::default();
            seats.free_by_section.insert(*section_id, free.clone());
            let plan = plan(&[booking], &seats, &HashMap::new(), 10);
            let got: Vec<&FreeSeat> = free.iter().filter(|seat| plan.assigned.contains_key(&seat.seat_id)).collect();
            if free.len() < quantity as usize {
                prop_assert!(got.is_empty());
                return Ok(());
            }
            let refs: Vec<&FreeSeat> = free.iter().collect();
            let mut rows: BTreeMap<i32, Vec<&FreeSeat>> = BTreeMap::new();
            for seat in &refs {
                rows.entry(seat.row_rank).or_default().push(seat);
            }
            let adjacent = |block: &[&FreeSeat]| block.windows(2).all(|pair| {
                pair[1].row_rank == pair[0].row_rank && pair[1].seat_number == pair[0].seat_number + 1
            });
            let blocks: Vec<(&Vec<&FreeSeat>, &[&FreeSeat])> = rows.values()
                .flat_map(|row| row.windows(quantity as usize).filter(|w| adjacent(w)).map(move |w| (row, w)))
                .collect();
            if blocks.is_empty() {
                prop_assert_eq!(got.len(), quantity as usize);
                return Ok(());
            }
            prop_assert!(adjacent(&got), "seats in one row side by side");
            let row = &rows[&got[0].row_rank];
            let avoidable = blocks.iter().any(|(row, block)| !strands(row, block));
            prop_assert!(!avoidable || !strands(row, &got), "a single seat stranded where another block avoids it");
        }
    }
}
