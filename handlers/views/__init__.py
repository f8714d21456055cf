"""What the screens show, one module per area: ``text`` (money, numbers, dates and
panel texts in the reader's locale), ``keyboards`` (buttons, rows, the pager, editing
a screen in place), ``menu`` (the main menu and the way back to it), ``catalog`` (a
service's card, the page cache), ``order_form`` (the form's steps and the order to
confirm), ``orders`` (an order's line, card and buttons), ``ledger`` (balance
movements) and ``broadcast`` (a received message as HTML). Every text goes through
gettext."""
